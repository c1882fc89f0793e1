package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cistern-mq/cistern/drivers"
	"github.com/cistern-mq/cistern/drivers/fsdriver"
	"github.com/cistern-mq/cistern/drivers/memdriver"
	"github.com/cistern-mq/cistern/index"
	"github.com/cistern-mq/cistern/index/enginetest"
)

// The benchmarks run on the mem store, so that they measure what delivery
// itself costs (reading the queue, the cursor, the webhook requests), not
// the store's writes. docs/performance.md has one run's numbers.

// benchBody is a 1 KiB message body, as bench-compare's workloads post.
var benchBody = json.RawMessage(`{"pad": "` + strings.Repeat("x", 1010) + `"}`)

// countingHook is a webhook on 127.0.0.1 that counts what it takes and
// closes done when it has taken want.
type countingHook struct {
	srv  *httptest.Server
	n    atomic.Int64
	want int64
	done chan struct{}
}

func newCountingHook(b *testing.B, want int) *countingHook {
	h := &countingHook{want: int64(want), done: make(chan struct{})}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if h.n.Add(1) == h.want {
			close(h.done)
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(h.srv.Close)
	return h
}

func benchDeliverer(b *testing.B, w *world, requireConfirmation bool) *Deliverer {
	b.Helper()
	d, err := NewDeliverer(DeliverOptions{Store: w.subs, Source: w.eng, Logger: zerolog.Nop(), Now: w.clk.Now,
		Allow: loopback, RequireConfirmation: requireConfirmation})
	if err != nil {
		b.Fatal(err)
	}
	return d
}

// BenchmarkDeliverBacklog: how fast one subscription drains a backlog of
// b.N messages to a local webhook (deliveries are one at a time, in post
// order).
func BenchmarkDeliverBacklog(b *testing.B) {
	b.Run("mem", func(b *testing.B) { deliverBacklog(b, memdriver.New()) })
	b.Run("fs", func(b *testing.B) {
		st, err := fsdriver.New(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		deliverBacklog(b, st)
	})
}

func deliverBacklog(b *testing.B, st drivers.Store) {
	w := newWorld(b, st, enginetest.NewClock())
	defer w.eng.Close()
	ctx := context.Background()
	hook := newCountingHook(b, b.N)
	if _, _, err := w.subs.Create(ctx, testRef, hook.srv.URL, 3600, json.RawMessage(`{}`)); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i += 10 {
		batch := make([]index.NewMessage, min(10, b.N-i))
		for j := range batch {
			batch[j] = index.NewMessage{Body: benchBody, TTL: 3600}
		}
		if _, err := w.eng.Post(ctx, testRef, "c", batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	start := time.Now()
	d := benchDeliverer(b, w, false)
	select {
	case <-hook.done:
	case <-time.After(10 * time.Minute):
		b.Fatalf("%d of %d delivered", hook.n.Load(), b.N)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	d.Close()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "deliveries/s")
}

// BenchmarkPostWith10Subscribers: posting to a queue with 10 confirmed
// webhook subscriptions (each its own receiver, delivered to meanwhile)
// against posting to a queue with none, one post of each per iteration,
// alternating which goes first, so both see the same machine load.
func BenchmarkPostWith10Subscribers(b *testing.B) {
	w := newWorld(b, memdriver.New(), enginetest.NewClock())
	defer w.eng.Close()
	ctx := context.Background()
	plain, subscribed := index.QueueRef{Project: "p", Name: "plain"}, index.QueueRef{Project: "p", Name: "subscribed"}
	hooks := make([]*countingHook, 10)
	confirmed := true
	for i := range hooks {
		hooks[i] = newCountingHook(b, b.N)
		sub, _, err := w.subs.Create(ctx, subscribed, fmt.Sprintf("%s/%d", hooks[i].srv.URL, i), 3600, json.RawMessage(`{}`))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := w.subs.Update(ctx, subscribed, sub.ID, Patch{Confirmed: &confirmed}); err != nil {
			b.Fatal(err)
		}
	}
	d := benchDeliverer(b, w, true)
	defer d.Close()
	post := func(ref index.QueueRef) time.Duration {
		t0 := time.Now()
		if _, err := w.eng.Post(ctx, ref, "c", []index.NewMessage{{Body: benchBody, TTL: 3600}}); err != nil {
			b.Fatal(err)
		}
		d.Posted(ref)
		return time.Since(t0)
	}
	var none, ten time.Duration
	b.ResetTimer()
	for i := range b.N {
		if i%2 == 0 {
			none += post(plain)
			ten += post(subscribed)
		} else {
			ten += post(subscribed)
			none += post(plain)
		}
	}
	b.StopTimer()
	for _, h := range hooks {
		select {
		case <-h.done:
		case <-time.After(10 * time.Minute):
			b.Fatalf("a subscriber took %d of %d", h.n.Load(), b.N)
		}
	}
	b.ReportMetric(float64(b.N)/none.Seconds(), "posts/s-none")
	b.ReportMetric(float64(b.N)/ten.Seconds(), "posts/s-10subs")
	b.ReportMetric(none.Seconds()/ten.Seconds(), "ratio-10subs/none")
}

// BenchmarkDeliveryLatencyFS: the time from a post's acknowledgement to
// its webhook request, one message at a time, on the fs store (the
// issue's target: p50 ≤ 50 ms with a healthy local subscriber). It
// reports p50 and p99 in milliseconds.
func BenchmarkDeliveryLatencyFS(b *testing.B) {
	st, err := fsdriver.New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	w := newWorld(b, st, enginetest.NewClock())
	defer w.eng.Close()
	ctx := context.Background()
	arrived := make(chan time.Time, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
		arrived <- time.Now()
		rw.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	if _, _, err := w.subs.Create(ctx, testRef, srv.URL, 3600, json.RawMessage(`{}`)); err != nil {
		b.Fatal(err)
	}
	d := benchDeliverer(b, w, false)
	defer d.Close()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		if _, err := w.eng.Post(ctx, testRef, "c", []index.NewMessage{{Body: benchBody, TTL: 3600}}); err != nil {
			b.Fatal(err)
		}
		acked := time.Now()
		d.Posted(testRef)
		select {
		case at := <-arrived:
			lat = append(lat, at.Sub(acked))
		case <-time.After(time.Minute):
			b.Fatal("no delivery within a minute")
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
