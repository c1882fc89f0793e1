package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cistern-mq/cistern/drivers"
	"github.com/cistern-mq/cistern/drivers/drivertest"
	"github.com/cistern-mq/cistern/drivers/fsdriver"
	"github.com/cistern-mq/cistern/index"
	"github.com/cistern-mq/cistern/index/enginetest"
)

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

// receiver is a webhook on 127.0.0.1 that fails while fail says so and
// records what it took.
type receiver struct {
	srv *httptest.Server
	mu  sync.Mutex
	// fail answers a request with a status (0: take it).
	fail     func(n int) int
	requests int
	got      []map[string]any // bodies of the requests it took, in order
	headers  []http.Header
}

func newReceiver(t *testing.T, fail func(n int) int) *receiver {
	r := &receiver{fail: fail}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		data, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.requests++
		if st := r.fail(r.requests); st != 0 {
			w.WriteHeader(st)
			return
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Errorf("webhook body %q: %v", data, err)
		}
		r.got = append(r.got, m)
		r.headers = append(r.headers, req.Header.Clone())
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) taken() []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]map[string]any(nil), r.got...)
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests
}

// world is an engine and a subscription store over one fs store.
type world struct {
	st   drivers.Store
	clk  *enginetest.Clock
	eng  *index.Engine
	subs *Store
}

func newWorld(t testing.TB, st drivers.Store, clk *enginetest.Clock) *world {
	t.Helper()
	eng, err := index.Open(context.Background(), index.Options{Store: st, Clock: clk, Logger: zerolog.Nop(), NoJanitor: true})
	if err != nil {
		t.Fatal(err)
	}
	subs, err := NewStore(context.Background(), st, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	return &world{st: st, clk: clk, eng: eng, subs: subs}
}

func fsStore(t *testing.T) drivers.Store {
	st, err := fsdriver.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// waits records what a deliverer waited and returns at once.
type waits struct {
	mu sync.Mutex
	d  []time.Duration
}

func (w *waits) wait(ctx context.Context, d time.Duration) error {
	w.mu.Lock()
	w.d = append(w.d, d)
	w.mu.Unlock()
	return ctx.Err()
}

func (w *world) deliverer(t *testing.T, wait func(context.Context, time.Duration) error) *Deliverer {
	t.Helper()
	d, err := NewDeliverer(DeliverOptions{Store: w.subs, Source: w.eng, Logger: zerolog.Nop(),
		Now: w.clk.Now, Wait: wait, Allow: loopback})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func (w *world) post(t *testing.T, ref index.QueueRef, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if _, err := w.eng.Post(context.Background(), ref, "c", []index.NewMessage{{Body: json.RawMessage(fmt.Sprintf(`{"n": %d}`, i)), TTL: 3600}}); err != nil {
			t.Fatal(err)
		}
	}
}

// checkInOrder checks that the bodies taken hold n 0..count-1, each at
// least once and first seen in order; it returns the duplicates.
func checkInOrder(t *testing.T, got []map[string]any, count int) int {
	t.Helper()
	seen := map[int]bool{}
	next := 0
	for _, m := range got {
		b, _ := m["body"].(map[string]any)
		f, _ := b["n"].(float64)
		n := int(f)
		if seen[n] {
			continue
		}
		if n != next {
			t.Fatalf("message %d first delivered before %d: %v", n, next, got)
		}
		seen[n] = true
		next++
	}
	if next != count {
		t.Fatalf("delivered %d distinct messages, want %d", next, count)
	}
	return len(got) - count
}

// distinct counts the different messages among deliveries.
func distinct(got []map[string]any) int {
	seen := map[float64]bool{}
	for _, m := range got {
		b, _ := m["body"].(map[string]any)
		f, _ := b["n"].(float64)
		seen[f] = true
	}
	return len(seen)
}

var testRef = index.QueueRef{Project: "p", Name: "q"}

func TestDeliverRetriesThenRecoversInOrder(t *testing.T) {
	w := newWorld(t, fsStore(t), enginetest.NewClock())
	defer w.eng.Close()
	rcv := newReceiver(t, func(n int) int {
		if n <= 5 {
			return http.StatusInternalServerError
		}
		return 0
	})
	opts := `{"_retry_policy": {"retries_with_no_delay": 1, "minimum_delay_retries": 1, "minimum_delay": 2, "maximum_delay": 12, "maximum_delay_retries": 1},
		"post_headers": {"X-Token": "abc"}}`
	if _, _, err := w.subs.Create(context.Background(), testRef, rcv.srv.URL+"/hook", 3600, json.RawMessage(opts)); err != nil {
		t.Fatal(err)
	}
	w.post(t, testRef, 0, 10)
	var ws waits
	d := w.deliverer(t, ws.wait)
	defer d.Close()
	drivertest.Eventually(t, "10 deliveries", func() bool { return len(rcv.taken()) >= 10 })
	got := rcv.taken()
	if dups := checkInOrder(t, got, 10); dups != 0 {
		t.Fatalf("%d duplicates without a crash", dups)
	}
	// Zaqar's spacing: one retry at once, one at the minimum delay, the
	// linear backoff 2, 7, then the maximum delay.
	want := []time.Duration{2 * time.Second, 2 * time.Second, 7 * time.Second, 12 * time.Second}
	if fmt.Sprint(ws.d) != fmt.Sprint(want) {
		t.Fatalf("waits %v, want %v", ws.d, want)
	}
	m := got[0]
	if m["queue_name"] != "q" || m["Message_Type"] != "Notification" || m["ttl"] != float64(3600) || m["id"] == "" {
		t.Fatalf("payload %v", m)
	}
	if h := rcv.headers[0]; h.Get("X-Token") != "abc" || h.Get("Content-Type") != "application/json" {
		t.Fatalf("headers %v", h)
	}
}

func TestDeliverResumesAfterCrash(t *testing.T) {
	st, clk := fsStore(t), enginetest.NewClock()
	w := newWorld(t, st, clk)
	var up sync.Mutex
	down := true
	rcv := newReceiver(t, func(n int) int {
		up.Lock()
		defer up.Unlock()
		if n > 3 && down {
			return http.StatusServiceUnavailable
		}
		return 0
	})
	if _, _, err := w.subs.Create(context.Background(), testRef, rcv.srv.URL, 3600, json.RawMessage(`{}`)); err != nil {
		t.Fatal(err)
	}
	// The first deliverer is stopped while it waits out the outage.
	d1 := w.deliverer(t, func(ctx context.Context, _ time.Duration) error { <-ctx.Done(); return ctx.Err() })
	w.post(t, testRef, 0, 25)
	d1.Posted(testRef)
	drivertest.Eventually(t, "the outage met", func() bool { return rcv.count() > 3 })
	d1.Close()
	if err := w.eng.Close(); err != nil {
		t.Fatal(err)
	}
	up.Lock()
	down = false
	up.Unlock()

	// A new process over the same store.
	w2 := newWorld(t, st, clk)
	defer w2.eng.Close()
	d2 := w2.deliverer(t, func(ctx context.Context, _ time.Duration) error { return ctx.Err() })
	defer d2.Close()
	w2.post(t, testRef, 25, 5)
	d2.Posted(testRef)
	// Duplicates are allowed: wait for 30 different messages.
	drivertest.Eventually(t, "all 30 delivered", func() bool { return distinct(rcv.taken()) >= 30 })
	drivertest.Eventually(t, "the cursor at the end", func() bool {
		c, err := w2.subs.Cursor(context.Background(), testRef, mustOnlySub(t, w2).ID)
		return err == nil && c.Seq > 0 && c.MessageID != ""
	})
	dups := checkInOrder(t, rcv.taken(), 30)
	t.Logf("%d duplicates after the restart", dups)
}

func mustOnlySub(t *testing.T, w *world) Subscription {
	subs, err := w.subs.List(context.Background(), testRef, "", 10)
	if err != nil || len(subs) != 1 {
		t.Fatalf("subscriptions %v %v", subs, err)
	}
	return subs[0]
}

func TestDeliverOnlyWhatFollowsTheSubscription(t *testing.T) {
	w := newWorld(t, fsStore(t), enginetest.NewClock())
	defer w.eng.Close()
	rcv := newReceiver(t, func(int) int { return 0 })
	w.post(t, testRef, 100, 3) // before the subscription: not owed
	w.clk.Advance(time.Second)
	tmpl := `{"post_data": "{\"wrapped\": \"$zaqar_message$\", \"k\": 1}"}`
	if _, _, err := w.subs.Create(context.Background(), testRef, rcv.srv.URL, 3600, json.RawMessage(tmpl)); err != nil {
		t.Fatal(err)
	}
	w.post(t, testRef, 0, 2)
	d := w.deliverer(t, nil)
	defer d.Close()
	drivertest.Eventually(t, "2 deliveries", func() bool { return len(rcv.taken()) >= 2 })
	var unwrapped []map[string]any
	for _, m := range rcv.taken() {
		inner, ok := m["wrapped"].(map[string]any)
		if !ok || m["k"] != float64(1) {
			t.Fatalf("post_data not applied: %v", m)
		}
		unwrapped = append(unwrapped, inner)
	}
	checkInOrder(t, unwrapped, 2)
}

func TestDialerRefusesInternalAddresses(t *testing.T) {
	for _, c := range []struct {
		addr  string
		allow string
		ok    bool
	}{
		{"127.0.0.1", "", false},
		{"::1", "", false},
		{"::ffff:127.0.0.1", "", false},
		{"10.1.2.3", "", false},
		{"172.16.0.1", "", false},
		{"192.168.1.1", "", false},
		{"169.254.169.254", "", false},
		{"fe80::1", "", false},
		{"100.64.0.1", "", false},
		{"0.0.0.0", "", false},
		{"8.8.8.8", "", true},
		{"2001:4860::8888", "", true},
		{"127.0.0.1", "127.0.0.0/8", true},
		{"10.1.2.3", "10.1.0.0/16, 192.168.0.1", true},
		{"192.168.0.1", "10.1.0.0/16, 192.168.0.1", true},
		{"192.168.0.2", "10.1.0.0/16,192.168.0.1", false},
	} {
		allow, err := ParseAllow(c.allow)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkAddr(netip.MustParseAddr(c.addr), allow); (err == nil) != c.ok {
			t.Errorf("%s with allow %q: %v", c.addr, c.allow, err)
		}
	}
	if _, err := ParseAllow("10.0.0.0/33"); err == nil {
		t.Error("a bad CIDR parsed")
	}

	// At dial time, after resolution: a host name resolving to loopback
	// is refused as the address is.
	rcv := newReceiver(t, func(int) int { return 0 })
	w := newWorld(t, fsStore(t), enginetest.NewClock())
	defer w.eng.Close()
	d, err := NewDeliverer(DeliverOptions{Store: w.subs, Source: w.eng, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	port := rcv.srv.URL[len("http://127.0.0.1:"):]
	for _, u := range []string{rcv.srv.URL, "http://localhost:" + port} {
		if err := d.post(u, []byte(`{}`), http.Header{}); err == nil || !errorsIs(err, ErrRefusedAddress) {
			t.Errorf("post to %s: %v, want refused", u, err)
		}
	}
	if rcv.count() != 0 {
		t.Fatal("the refused webhook got a request")
	}
}

func TestRetrySchedule(t *testing.T) {
	waits, after := RetryPolicy{}.Schedule()
	s := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Second
		}
		return out
	}
	if want := s(0, 0, 0, 5, 5, 5, 5, 10, 15, 20, 25, 30, 30, 30); fmt.Sprint(waits) != fmt.Sprint(want) || after != 30*time.Second {
		t.Fatalf("default schedule %v then %v", waits, after)
	}
	for _, fn := range []string{"geometric", "exponential", "arithmetic"} {
		got := backoff(fn, 5, 30)
		if len(got) != 5 || got[0] < 4 || got[len(got)-1] > 30 {
			t.Errorf("%s: %v", fn, got)
		}
		for i := 1; i < len(got); i++ {
			if got[i] < got[i-1] {
				t.Errorf("%s decreases: %v", fn, got)
			}
		}
	}
	if got := backoff("geometric", 5, 12); len(got) != 2 {
		t.Errorf("short range: %v", got)
	}
	sub := retryPolicyOf(json.RawMessage(`{"_retry_policy": {"minimum_delay": 1}}`))
	queue := retryPolicyOf(json.RawMessage(`{"_retry_policy": {"minimum_delay": 2, "ignore_subscription_override": true}}`))
	if p := choosePolicy(sub, queue); *p.MinimumDelay != 2 {
		t.Error("ignore_subscription_override not honoured")
	}
	if p := choosePolicy(sub, RetryPolicy{}); *p.MinimumDelay != 1 {
		t.Error("the subscription's policy not taken")
	}
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }

// TestDeliverConfirmedOnly: with confirmation required, a subscription is
// owed what is posted once it is confirmed, and notices reach it.
func TestDeliverConfirmedOnly(t *testing.T) {
	w := newWorld(t, fsStore(t), enginetest.NewClock())
	defer w.eng.Close()
	rcv := newReceiver(t, func(int) int { return 0 })
	sub, _, err := w.subs.Create(context.Background(), testRef, rcv.srv.URL, 3600, json.RawMessage(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewDeliverer(DeliverOptions{Store: w.subs, Source: w.eng, Logger: zerolog.Nop(), Now: w.clk.Now,
		Wait: func(ctx context.Context, _ time.Duration) error { return ctx.Err() }, Allow: loopback, RequireConfirmation: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	w.post(t, testRef, 100, 1) // while unconfirmed: never owed
	d.Posted(testRef)
	d.Notice(sub, []byte(`{"Message_Type": "SubscriptionConfirmation"}`))
	drivertest.Eventually(t, "the notice", func() bool { return len(rcv.taken()) == 1 })
	if got := rcv.taken()[0]; got["Message_Type"] != "SubscriptionConfirmation" {
		t.Fatalf("notice %v", got)
	}
	w.clk.Advance(time.Second)
	yes := true
	sub, err = w.subs.Update(context.Background(), testRef, sub.ID, Patch{Confirmed: &yes})
	if err != nil {
		t.Fatal(err)
	}
	w.clk.Advance(time.Second)
	w.post(t, testRef, 0, 2)
	d.Created(sub)
	drivertest.Eventually(t, "2 deliveries", func() bool { return len(rcv.taken()) >= 3 })
	checkInOrder(t, rcv.taken()[1:], 2)
}
