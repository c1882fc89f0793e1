package server

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cistern-mq/cistern/drivers"
	"github.com/cistern-mq/cistern/drivers/memdriver"
	"github.com/cistern-mq/cistern/server/wire"
)

// downOn makes every head of st fail as an unreachable store would, with
// an error naming an internal URL.
func downOn(st *memdriver.Store) {
	st.SetFault(func(op memdriver.Op, _, _ string) error {
		if op == memdriver.OpHead {
			return drivers.Errorf(drivers.ErrUnavailable, "dial tcp http://10.9.8.7:8080/internal: connection refused")
		}
		return nil
	})
}

// bare is a request with none of the headers the Zaqar routes need, as a
// load balancer sends it.
func bare(t *testing.T, method, url string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, resp.Header, b.String()
}

// TestReadyzNamesPoolsDown: /readyz is 204 while every pool answers and
// 503 naming only the pools that do not (never their errors) otherwise;
// /healthz stays 204, since the process answers.
func TestReadyzNamesPoolsDown(t *testing.T) {
	public, admin, stores := poolsEnv(t)
	for _, base := range []string{public, admin} {
		if code, _, body := bare(t, "GET", base+"/readyz"); code != 204 {
			t.Fatalf("readyz %d %s, want 204", code, body)
		}
	}
	downOn(stores["mem:b"])
	code, h, body := bare(t, "GET", public+"/readyz")
	if code != 503 || h.Get("Retry-After") == "" {
		t.Fatalf("readyz with pool b down: %d (Retry-After %q) %s", code, h.Get("Retry-After"), body)
	}
	var rb readyBody
	if err := json.Unmarshal([]byte(body), &rb); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	if len(rb.PoolsDown) != 1 || rb.PoolsDown[0] != "b" || strings.Contains(body, "10.9.8.7") {
		t.Errorf("readyz body %s, want pools_down [b] and no store error", body)
	}
	if code, _, _ := bare(t, "HEAD", public+"/readyz"); code != 503 {
		t.Errorf("HEAD readyz %d, want 503", code)
	}
	if code, _, body := bare(t, "GET", public+"/healthz"); code != 204 {
		t.Errorf("healthz with a pool down: %d %s, want 204", code, body)
	}
}

// TestHealthDetailOnAdminOnly: the public /v2/health says whether the
// stores answer, never their errors (which name internal URLs); the admin
// side names each pool with its error.
func TestHealthDetailOnAdminOnly(t *testing.T) {
	public, admin, stores := poolsEnv(t)
	downOn(stores["mem:b"])
	code, body := call(t, "GET", public+"/v2/health", "")
	if code != 200 || strings.Contains(body, "10.9.8.7") || strings.Contains(body, `"pools"`) {
		t.Errorf("public health: %d %s, want 200 without pools nor errors", code, body)
	}
	var h wire.Health
	if err := json.Unmarshal([]byte(body), &h); err != nil || h.StorageReachable {
		t.Errorf("public health %s (%v): want storage_reachable false", body, err)
	}
	code, body = call(t, "GET", admin+"/v2/health", "")
	if err := json.Unmarshal([]byte(body), &h); err != nil || code != 200 {
		t.Fatalf("admin health %d %s: %v", code, body, err)
	}
	if len(h.Pools) != 2 || !h.Pools[0].Reachable || h.Pools[1].Reachable || !strings.Contains(h.Pools[1].Error, "10.9.8.7") {
		t.Errorf("admin health pools %+v, want a up and b down with its error", h.Pools)
	}
	// Zaqar's ping is unchanged: GET 503 with a store down, HEAD 204.
	if code, _ := call(t, "GET", public+"/v2/ping", ""); code != 503 {
		t.Errorf("GET /v2/ping %d, want 503", code)
	}
	if code, _ := call(t, "HEAD", public+"/v2/ping", ""); code != 204 {
		t.Errorf("HEAD /v2/ping %d, want 204", code)
	}
}

// TestProbesNeedNoToken: with auth_strategy keystone, /healthz and /readyz
// need no token, as load balancers send none; /v2/ping still does.
func TestProbesNeedNoToken(t *testing.T) {
	e, _, _ := keystoneEnv(t, nil)
	noHeaders := map[string]string{"Client-ID": "-", "X-Project-ID": "-"}
	e.must(req{method: "GET", path: "/healthz", header: noHeaders}, 204)
	e.must(req{method: "GET", path: "/readyz", header: noHeaders}, 204)
	e.must(req{method: "GET", path: "/v2/ping", header: noHeaders}, 401)
}

// TestMetricsWhereOperatorsChoose: /metrics is not on the public listener
// unless asked; the admin and the metrics-only handlers serve it, with
// cistern_pool_up by pool.
func TestMetricsWhereOperatorsChoose(t *testing.T) {
	public, admin, stores := poolsEnv(t)
	if code, _, _ := bare(t, "GET", public+"/metrics"); code != 404 {
		t.Errorf("public /metrics %d, want 404", code)
	}
	downOn(stores["mem:b"])
	code, _, body := bare(t, "GET", admin+"/metrics")
	if code != 200 {
		t.Fatalf("admin /metrics %d", code)
	}
	for _, want := range []string{`cistern_pool_up{pool="a"} 1`, `cistern_pool_up{pool="b"} 0`} {
		if !strings.Contains(body, want) {
			t.Errorf("admin /metrics lacks %s", want)
		}
	}
	e := newEnv(t, envOpts{})
	hs := httptest.NewServer(e.srv.MetricsHandler())
	t.Cleanup(hs.Close)
	only := hs.URL
	if code, _, body := bare(t, "GET", only+"/metrics"); code != 200 || !strings.Contains(body, `cistern_pool_up{pool="default"} 1`) {
		t.Errorf("metrics handler /metrics %d, want 200 with the pool up:\n%s", code, body)
	}
	if code, _, _ := bare(t, "GET", only+"/v2/queues"); code != 404 {
		t.Errorf("metrics handler serves /v2/queues: %d", code)
	}
}

// hungStore is a store whose puts, once hung, never answer: they return
// only when their context is done (or the test ends).
type hungStore struct {
	drivers.Store
	hung    atomic.Bool
	release chan struct{}
}

func (h *hungStore) Put(ctx context.Context, container, key string, data []byte, o *drivers.PutOptions) error {
	if h.hung.Load() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-h.release:
		}
	}
	return h.Store.Put(ctx, container, key, data, o)
}

// TestRequestTimeoutHungStore: a POST to a store that accepts and never
// answers is 503 with Retry-After once request_timeout passes, instead of
// holding the client for as long as the store does.
func TestRequestTimeoutHungStore(t *testing.T) {
	st := &hungStore{Store: memdriver.New(), release: make(chan struct{})}
	e := newEnv(t, envOpts{store: st, real: true, server: func(o *Options) { o.RequestTimeout = 50 * time.Millisecond }})
	t.Cleanup(func() { close(st.release) }) // before the engine closes: its flush may be waiting
	e.must(req{method: "PUT", path: "/v2/queues/hung"}, 201)
	st.hung.Store(true)
	r := e.must(req{method: "POST", path: "/v2/queues/hung/messages", body: `{"messages": [{"body": 1}]}`}, 503)
	if r.header.Get("Retry-After") == "" {
		t.Errorf("503 without Retry-After: %s", r.body)
	}
}
