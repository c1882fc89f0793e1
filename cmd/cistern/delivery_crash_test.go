package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// The delivery crash test runs the real binary with confirmed webhook
// subscriptions, kills it with SIGKILL while a delivery is in flight and
// restarts it on the same data: every message whose post got a 201 must
// reach every subscription at least once. Duplicates are allowed (and
// logged); a loss fails.

// hookReceiver is the webhook of the test, on 127.0.0.1. While stalled,
// once it has taken stallAfter different messages, it holds every further
// request without answering, so that the kill lands mid-delivery.
type hookReceiver struct {
	srv        *httptest.Server
	mu         sync.Mutex
	got        map[string]map[string]int // path -> message id -> times taken
	stallAfter int
	stalled    bool
	held       chan struct{} // closed when the first request is held
	heldOnce   sync.Once
	release    chan struct{} // closed to let held requests go
}

func newHookReceiver(t *testing.T, stallAfter int) *hookReceiver {
	r := &hookReceiver{got: map[string]map[string]int{}, stallAfter: stallAfter, stalled: true,
		held: make(chan struct{}), release: make(chan struct{})}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(func() {
		r.unstall()
		r.srv.Close()
	})
	return r
}

func (r *hookReceiver) serve(w http.ResponseWriter, req *http.Request) {
	data, err := io.ReadAll(req.Body)
	if err != nil {
		return
	}
	var m struct {
		ID   string `json:"id"`
		Type string `json:"Message_Type"`
	}
	if json.Unmarshal(data, &m) != nil || m.Type != "Notification" {
		// Confirmation notices: taken, not counted.
		w.WriteHeader(http.StatusNoContent)
		return
	}
	r.mu.Lock()
	if r.stalled && r.distinctLocked() >= r.stallAfter {
		r.mu.Unlock()
		r.heldOnce.Do(func() { close(r.held) })
		select {
		case <-r.release:
		case <-req.Context().Done():
		}
		// No answer: the delivery it carried was not taken.
		return
	}
	if r.got[req.URL.Path] == nil {
		r.got[req.URL.Path] = map[string]int{}
	}
	r.got[req.URL.Path][m.ID]++
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (r *hookReceiver) distinctLocked() int {
	n := 0
	for _, ids := range r.got {
		n += len(ids)
	}
	return n
}

func (r *hookReceiver) unstall() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stalled {
		r.stalled = false
		close(r.release)
	}
}

// missing returns, per path, how many of acked it has not taken, and
// how many duplicates it took.
func (r *hookReceiver) missing(paths []string, acked []string) (missing, dups map[string]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	missing, dups = map[string]int{}, map[string]int{}
	for _, p := range paths {
		for _, id := range acked {
			if r.got[p][id] == 0 {
				missing[p]++
			}
		}
		for _, n := range r.got[p] {
			dups[p] += n - 1
		}
	}
	return missing, dups
}

func TestDeliveryCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the server")
	}
	const messages, stallAfter = 120, 50
	bin := buildBinary(t)
	addr := freePort(t)
	args := []string{"-data", t.TempDir(), "-subscriber-allow", "127.0.0.0/8",
		"-require-confirmation", "-signed-url-secret", "delivery-crash-test"}
	rcv := newHookReceiver(t, stallAfter)
	p := start(t, bin, addr, args...)
	c := &client{base: "http://" + addr, id: "00000000-0000-4000-8000-000000000001", project: "crash", http: &http.Client{Timeout: 10 * time.Second}}
	const queue = "delivery-crash"
	paths := []string{"/a", "/b"}
	for _, path := range paths {
		code, data, err := c.do("POST", "/v2/queues/"+queue+"/subscriptions", map[string]any{"subscriber": rcv.srv.URL + path, "ttl": 3600})
		if err != nil || code != http.StatusCreated {
			t.Fatalf("subscribe: %d %v %s", code, err, data)
		}
		var res struct {
			ID string `json:"subscription_id"`
		}
		if err := json.Unmarshal(data, &res); err != nil {
			t.Fatal(err)
		}
		code, data, err = c.do("PUT", "/v2/queues/"+queue+"/subscriptions/"+res.ID+"/confirm", map[string]bool{"confirmed": true})
		if err != nil || code != http.StatusNoContent {
			t.Fatalf("confirm: %d %v %s", code, err, data)
		}
	}
	var acked []string
	for i := range messages {
		code, data, err := c.do("POST", "/v2/queues/"+queue+"/messages",
			map[string]any{"messages": []map[string]any{{"body": map[string]int{"n": i}, "ttl": 3600}}})
		if err != nil || code != http.StatusCreated {
			t.Fatalf("post %d: %d %v %s", i, code, err, data)
		}
		var res struct{ Resources []string }
		if json.Unmarshal(data, &res) != nil || len(res.Resources) != 1 {
			t.Fatalf("post answered 201 with %s", data)
		}
		acked = append(acked, idFromHref(res.Resources[0]))
	}
	select {
	case <-rcv.held:
	case <-time.After(60 * time.Second):
		t.Fatalf("no delivery reached the receiver's stall point\n%s", p.log.String())
	}
	p.kill()
	missingAtKill, _ := rcv.missing(paths, acked)
	rcv.unstall()
	p = start(t, bin, addr, args...)
	deadline := time.Now().Add(60 * time.Second)
	for {
		missing, dups := rcv.missing(paths, acked)
		if len(missing) == 0 {
			t.Logf("%d messages acknowledged; at the kill %v were still owed; after the restart all reached both subscriptions, duplicates %v",
				len(acked), missingAtKill, dups)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("acknowledged messages never delivered after the restart: %v (duplicates %v)\n%s", missing, dups, p.log.String())
		}
		<-time.After(20 * time.Millisecond) // polling the receiver, within the deadline
	}
}
