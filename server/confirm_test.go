package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/cistern-mq/cistern/index"
	"github.com/cistern-mq/cistern/notify"
)

// noticeTaker is a Notifier that keeps the notices.
type noticeTaker struct {
	mu      sync.Mutex
	notices []confirmNotice
	changed []notify.Subscription
}

func (n *noticeTaker) Posted(index.QueueRef) {}
func (n *noticeTaker) Created(sub notify.Subscription) {
	n.mu.Lock()
	n.changed = append(n.changed, sub)
	n.mu.Unlock()
}
func (n *noticeTaker) Notice(_ notify.Subscription, body []byte) {
	var c confirmNotice
	if err := json.Unmarshal(body, &c); err != nil {
		panic(err)
	}
	n.mu.Lock()
	n.notices = append(n.notices, c)
	n.mu.Unlock()
}

func (n *noticeTaker) last(t *testing.T, count int) confirmNotice {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.notices) != count {
		t.Fatalf("%d notices, want %d", len(n.notices), count)
	}
	return n.notices[count-1]
}

// TestConfirmationNotice: with confirmation required, a subscriber gets a
// signed URL with which it confirms itself (no other credential), and an
// unsubscribe notice when set unconfirmed.
func TestConfirmationNotice(t *testing.T) {
	nt := &noticeTaker{}
	e := newEnv(t, envOpts{single: true, server: func(o *Options) {
		o.Notify, o.RequireConfirmation = nt, true
	}})
	id := createSub(t, e, `{"subscriber": "http://127.0.0.1:9/c", "ttl": 600}`, http.StatusCreated)
	n := nt.last(t, 1)
	path := subsPath + "/" + id + "/confirm"
	if n.MessageType != "SubscriptionConfirmation" || n.URLPaths != path || n.URLMethods != "PUT" || n.ProjectID != project ||
		n.Message != "You have chosen to subscribe to the queue: sq" || string(n.SubscribeBody) != `{"confirmed":true}` {
		t.Fatalf("notice %+v", n)
	}
	// Subscribing again while unconfirmed sends the notice again.
	createSub(t, e, `{"subscriber": "http://127.0.0.1:9/c"}`, http.StatusCreated)
	nt.last(t, 2)

	signed := map[string]string{"URL-Signature": n.URLSignature, "URL-Methods": n.URLMethods, "URL-Paths": n.URLPaths,
		"URL-Expires": n.URLExpires, "X-Project-ID": n.ProjectID}
	// The grant opens the confirm route of this subscription only.
	e.must(req{method: "GET", path: subsPath + "/" + id, header: signed}, http.StatusNotFound)
	e.must(req{method: "PUT", path: path, body: string(n.SubscribeBody), header: signed}, http.StatusNoContent)
	var got subscriptionView
	e.must(req{method: "GET", path: subsPath + "/" + id}, http.StatusOK).decode(t, &got)
	if !got.Confirmed {
		t.Fatal("not confirmed by the signed URL")
	}
	e.must(req{method: "PUT", path: path, body: string(n.UnsubscribeBody), header: signed}, http.StatusNoContent)
	if u := nt.last(t, 3); u.MessageType != "UnsubscribeConfirmation" || u.URLPaths != path {
		t.Fatalf("unsubscribe notice %+v", u)
	}

	// The longest queue name's confirmation URL is within a grant's bounds.
	long := "/v2/queues/" + strings.Repeat("q", 64) + "/subscriptions"
	var created struct {
		ID string `json:"subscription_id"`
	}
	e.must(req{method: "POST", path: long, body: `{"subscriber": "http://127.0.0.1:9/c"}`}, http.StatusCreated).decode(t, &created)
	n = nt.last(t, 4)
	signed = map[string]string{"URL-Signature": n.URLSignature, "URL-Methods": n.URLMethods, "URL-Paths": n.URLPaths,
		"URL-Expires": n.URLExpires, "X-Project-ID": n.ProjectID}
	e.must(req{method: "PUT", path: long + "/" + created.ID + "/confirm", body: `{"confirmed": true}`, header: signed}, http.StatusNoContent)
}
