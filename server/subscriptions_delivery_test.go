package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cistern-mq/cistern/drivers/drivertest"
	"github.com/cistern-mq/cistern/notify"
)

// TestSubscriptionDeliversPosts: a post over HTTP reaches a webhook
// subscribed over HTTP, without waiting for a rescan (Posted).
func TestSubscriptionDeliversPosts(t *testing.T) {
	var mu sync.Mutex
	var got []map[string]any
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, _ := io.ReadAll(r.Body)
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Errorf("webhook body %q: %v", data, err)
		}
		mu.Lock()
		got = append(got, m)
		mu.Unlock()
	}))
	defer hook.Close()
	e := newDeliveryEnv(t)
	createSub(t, e, `{"subscriber": "`+hook.URL+`"}`, http.StatusCreated)
	e.must(req{method: "POST", path: "/v2/queues/sq/messages", body: `{"messages": [{"body": {"a": 1}, "ttl": 300}, {"body": "two"}]}`}, http.StatusCreated)
	drivertest.Eventually(t, "both messages at the webhook", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) >= 2
	})
	mu.Lock()
	defer mu.Unlock()
	if got[0]["queue_name"] != "sq" || got[0]["ttl"] != float64(300) || got[1]["body"] != "two" || got[1]["ttl"] != float64(3600) {
		t.Fatalf("notifications %v", got)
	}
}

// newDeliveryEnv is a single node whose subscriptions are delivered, to
// webhooks on loopback, without waiting between retries.
func newDeliveryEnv(t *testing.T) *env {
	t.Helper()
	var d *notify.Deliverer
	e := newEnv(t, envOpts{single: true, server: func(o *Options) {
		var err error
		d, err = notify.NewDeliverer(notify.DeliverOptions{Store: o.Subscriptions, Source: o.Engine.(notify.Source),
			Logger: zerolog.Nop(), Now: o.Clock, Rescan: time.Hour,
			Wait:  func(ctx context.Context, _ time.Duration) error { return ctx.Err() },
			Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
		if err != nil {
			t.Fatal(err)
		}
		o.Notify = d
	}})
	t.Cleanup(func() { d.Close() })
	return e
}
