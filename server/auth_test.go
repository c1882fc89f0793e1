package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cistern-mq/cistern/drivers"
	"github.com/cistern-mq/cistern/drivers/memdriver"
	"github.com/cistern-mq/cistern/index"
	"github.com/cistern-mq/cistern/index/enginetest"
	"github.com/cistern-mq/cistern/placement"
)

// fakeKeystone is a Keystone v3 token API in a test: it issues service
// tokens to one service user and answers validations from a table of
// client tokens. Times come from the test's clock.
type fakeKeystone struct {
	t   testing.TB
	url string
	clk *enginetest.Clock

	mu       sync.Mutex
	tokens   map[string]fakeToken // client token -> what it says
	svc      map[string]bool      // valid service tokens
	svcTTL   time.Duration
	down     int // 0 up; 1 answers 503; 2 drops connections
	validate atomic.Int64
	auths    atomic.Int64
}

type fakeToken struct {
	project string // "" unscoped
	user    string
	roles   []string
	expires time.Time
}

func newFakeKeystone(t testing.TB, clk *enginetest.Clock) *fakeKeystone {
	f := &fakeKeystone{t: t, clk: clk, tokens: map[string]fakeToken{}, svc: map[string]bool{}, svcTTL: time.Hour}
	hs := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(hs.Close)
	f.url = hs.URL + "/v3"
	return f
}

func (f *fakeKeystone) set(down int) { f.mu.Lock(); f.down = down; f.mu.Unlock() }

func (f *fakeKeystone) issue(token, project string, roles ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens[token] = fakeToken{project: project, user: "u-" + token, roles: roles, expires: f.clk.Now().Add(time.Hour)}
}

func (f *fakeKeystone) revoke(token string) { f.mu.Lock(); delete(f.tokens, token); f.mu.Unlock() }

// revokeService invalidates every service token, as a key rotation would.
func (f *fakeKeystone) revokeService() { f.mu.Lock(); clear(f.svc); f.mu.Unlock() }

func (f *fakeKeystone) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch f.down {
	case 1:
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	case 2:
		c, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			c.Close()
		}
		return
	}
	if r.URL.Path != "/v3/auth/tokens" {
		http.NotFound(w, r)
		return
	}
	doc := func(t fakeToken) []byte {
		m := map[string]any{"expires_at": t.expires.UTC().Format("2006-01-02T15:04:05.000000Z"),
			"user": map[string]string{"id": t.user, "name": t.user}}
		if t.project != "" {
			m["project"] = map[string]string{"id": t.project, "name": "name-" + t.project}
		}
		var roles []map[string]string
		for _, r := range t.roles {
			roles = append(roles, map[string]string{"id": "r-" + r, "name": r})
		}
		m["roles"] = roles
		b, _ := json.Marshal(map[string]any{"token": m})
		return b
	}
	switch r.Method {
	case http.MethodPost:
		f.auths.Add(1)
		var body struct {
			Auth struct {
				Identity struct {
					Password struct {
						User struct{ Name, Password string }
					}
				}
			}
		}
		if json.NewDecoder(r.Body).Decode(&body) != nil || body.Auth.Identity.Password.User.Name != "cistern" ||
			body.Auth.Identity.Password.User.Password != "pw" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		tok := fmt.Sprintf("svc-%d", f.auths.Load())
		f.svc[tok] = true
		w.Header().Set("X-Subject-Token", tok)
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(doc(fakeToken{project: "service", user: "cistern", roles: []string{"service"},
			expires: f.clk.Now().Add(f.svcTTL)}))
	case http.MethodGet:
		f.validate.Add(1)
		if !f.svc[r.Header.Get("X-Auth-Token")] {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		t, ok := f.tokens[r.Header.Get("X-Subject-Token")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(doc(t))
	}
}

// keystoneEnv is a server with auth_strategy keystone against a fake
// Keystone, over a placement router of one mem pool (so the admin API is
// served too).
func keystoneEnv(t *testing.T, mod func(*KeystoneOptions)) (*env, *fakeKeystone, *Keystone) {
	t.Helper()
	clk := enginetest.NewClock()
	fk := newFakeKeystone(t, clk)
	ko := KeystoneOptions{URL: fk.url, Username: "cistern", Password: "pw", Project: "service",
		CacheTTL: time.Minute, NegativeTTL: 10 * time.Second, Clock: clk.Now, Logger: zerolog.Nop()}
	if mod != nil {
		mod(&ko)
	}
	e, ks := keystoneServer(t, ko, clk)
	return e, fk, ks
}

// keystoneServer is a server validating tokens with ko, over a placement
// router of one mem pool whose engine runs on clk (nil: the real clock).
func keystoneServer(t *testing.T, ko KeystoneOptions, clk *enginetest.Clock) (*env, *Keystone) {
	t.Helper()
	ks, err := NewKeystone(ko)
	if err != nil {
		t.Fatal(err)
	}
	st := memdriver.New()
	r, err := placement.Open(context.Background(), placement.Options{
		Pools: []placement.PoolSpec{{Name: "a", URI: "mem:a", Weight: 100}},
		Open:  func(context.Context, placement.PoolSpec) (drivers.Store, error) { return st, nil },
		NewEngine: func(ctx context.Context, _ string, s drivers.Store) (*index.Engine, error) {
			io := index.Options{Store: s, Logger: zerolog.Nop(), NoJanitor: true}
			if clk != nil {
				io.Clock = clk
			}
			return index.Open(ctx, io)
		},
		Logger: zerolog.Nop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	so := Options{Engine: r, Pools: r, Logger: zerolog.Nop(), SharedSecret: "test-secret", Keystone: ks}
	if clk != nil {
		so.Clock = clk.Now
	}
	srv, err := New(so)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return &env{t: t, url: hs.URL, srv: srv, clk: clk, http: hs.Client()}, ks
}

// as is a request with token and no X-Project-ID unless the header says.
func as(token string, q req) req {
	h := map[string]string{"X-Project-ID": "-", "X-Auth-Token": token}
	for k, v := range q.header {
		h[k] = v
	}
	q.header = h
	return q
}

func TestKeystoneProjectFromToken(t *testing.T) {
	e, fk, _ := keystoneEnv(t, nil)
	fk.issue("tok-alice", "alpha", "member", "reader")
	fk.issue("tok-bob", "beta", "member")

	e.must(as("tok-alice", req{method: "PUT", path: "/v2/queues/q1"}), http.StatusCreated)
	e.must(as("tok-alice", req{method: "POST", path: "/v2/queues/q1/messages", body: `{"messages":[{"ttl":300,"body":"hi"}]}`}), http.StatusCreated)
	e.must(as("tok-alice", req{method: "GET", path: "/v2/queues/q1/stats", header: map[string]string{"X-Project-ID": "alpha"}}), http.StatusOK)

	// bob, whatever project he names, never reaches alpha's queue
	for _, p := range []string{"-", "alpha", "beta", ""} {
		h := map[string]string{"X-Project-ID": p}
		r := e.do(as("tok-bob", req{method: "GET", path: "/v2/queues/q1/messages?echo=true", header: h}))
		want := http.StatusForbidden
		if p == "-" || p == "beta" {
			want = http.StatusOK // his own project's q1: no messages
		}
		if r.status != want || strings.Contains(r.String(), "hi") {
			t.Fatalf("bob with X-Project-ID %q: %d %s, want %d", p, r.status, r.body, want)
		}
	}
	var list struct{ Queues []json.RawMessage }
	e.must(as("tok-bob", req{method: "GET", path: "/v2/queues"}), http.StatusOK).decode(t, &list)
	if len(list.Queues) != 0 {
		t.Fatalf("bob lists %d queues of another project", len(list.Queues))
	}
	r := e.must(as("tok-alice", req{method: "GET", path: "/v2/queues/q1", header: map[string]string{"X-Project-ID": "beta"}}), http.StatusForbidden)
	assertZaqarError(t, r)
}

func assertZaqarError(t *testing.T, r *resp) {
	t.Helper()
	var body struct{ Title, Description string }
	r.decode(t, &body)
	if body.Title == "" || body.Description == "" {
		t.Fatalf("error body %s", r.body)
	}
}

func TestKeystoneUnauthorized(t *testing.T) {
	e, fk, _ := keystoneEnv(t, nil)
	fk.issue("tok-alice", "alpha", "member")
	fk.issue("tok-unscoped", "", "member")
	for _, c := range []struct {
		name, token string
		want        int
	}{
		{"no token", "-", http.StatusUnauthorized},
		{"unknown token", "garbage", http.StatusUnauthorized},
		{"too long", strings.Repeat("x", maxTokenLength+1), http.StatusUnauthorized},
		{"unscoped", "tok-unscoped", http.StatusForbidden},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.do(as(c.token, req{method: "GET", path: "/v2/queues"}))
			if r.status != c.want {
				t.Fatalf("status %d %s, want %d", r.status, r.body, c.want)
			}
			assertZaqarError(t, r)
			if c.want == http.StatusUnauthorized && r.header.Get("WWW-Authenticate") != `Keystone uri="`+fk.url+`"` {
				t.Fatalf("WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
			}
		})
	}
	// GET / stays open, as in Zaqar
	e.must(as("-", req{method: "GET", path: "/"}), http.StatusMultipleChoices)
}

func TestKeystoneCacheAndRevocation(t *testing.T) {
	e, fk, ks := keystoneEnv(t, nil) // CacheTTL 1 min
	fk.issue("tok-alice", "alpha", "member")
	get := req{method: "GET", path: "/v2/queues"}
	for range 100 {
		e.must(as("tok-alice", get), http.StatusOK)
	}
	if n := fk.validate.Load(); n != 1 {
		t.Fatalf("100 requests with one token made %d validations, want 1", n)
	}
	if n := ks.Requests(); n != 2 { // one service authentication, one validation
		t.Fatalf("Keystone requests %d, want 2", n)
	}
	fk.revoke("tok-alice")
	e.clk.Advance(59 * time.Second)
	e.must(as("tok-alice", get), http.StatusOK) // still within the bound
	e.clk.Advance(time.Second)
	e.must(as("tok-alice", get), http.StatusUnauthorized)
}

func TestKeystoneCacheNeverPastExpiry(t *testing.T) {
	e, fk, _ := keystoneEnv(t, func(o *KeystoneOptions) { o.CacheTTL = time.Hour })
	fk.issue("tok-alice", "alpha", "member")
	fk.mu.Lock()
	tk := fk.tokens["tok-alice"]
	tk.expires = e.clk.Now().Add(30 * time.Second)
	fk.tokens["tok-alice"] = tk // Keystone would still vouch for it: our clock decides
	fk.mu.Unlock()
	get := req{method: "GET", path: "/v2/queues"}
	e.must(as("tok-alice", get), http.StatusOK)
	e.clk.Advance(30 * time.Second)
	e.must(as("tok-alice", get), http.StatusUnauthorized)
}

func TestKeystoneNegativeCache(t *testing.T) {
	e, fk, _ := keystoneEnv(t, nil) // NegativeTTL 10 s
	get := req{method: "GET", path: "/v2/queues"}
	for range 5 {
		e.must(as("bad", get), http.StatusUnauthorized)
	}
	if n := fk.validate.Load(); n != 1 {
		t.Fatalf("5 requests with one bad token made %d validations, want 1", n)
	}
	fk.issue("bad", "alpha", "member") // now Keystone knows it
	e.clk.Advance(9 * time.Second)
	e.must(as("bad", get), http.StatusUnauthorized)
	e.clk.Advance(time.Second)
	e.must(as("bad", get), http.StatusOK)
}

func TestKeystoneUnavailable(t *testing.T) {
	for _, mode := range []struct {
		name string
		down int
	}{{"5xx", 1}, {"connection dropped", 2}} {
		t.Run(mode.name, func(t *testing.T) {
			e, fk, _ := keystoneEnv(t, nil)
			fk.issue("tok-alice", "alpha", "member")
			fk.issue("tok-bob", "beta", "member")
			get := req{method: "GET", path: "/v2/queues"}
			e.must(as("tok-alice", get), http.StatusOK)
			fk.set(mode.down)
			e.must(as("tok-alice", get), http.StatusOK) // cached
			r := e.must(as("tok-bob", get), http.StatusServiceUnavailable)
			assertZaqarError(t, r)
			if r.header.Get("Retry-After") == "" {
				t.Fatal("503 without Retry-After")
			}
			// not negatively cached: Keystone back, bob gets in at once
			fk.set(0)
			e.must(as("tok-bob", get), http.StatusOK)
		})
	}
}

func TestKeystoneServiceTokenRenewal(t *testing.T) {
	e, fk, _ := keystoneEnv(t, func(o *KeystoneOptions) { o.CacheTTL = time.Second })
	fk.issue("tok-alice", "alpha", "member")
	get := req{method: "GET", path: "/v2/queues"}
	e.must(as("tok-alice", get), http.StatusOK)
	fk.revokeService() // Keystone now answers 401 to our service token
	e.clk.Advance(time.Second)
	e.must(as("tok-alice", get), http.StatusOK)
	if n := fk.auths.Load(); n != 2 {
		t.Fatalf("service authentications %d, want 2", n)
	}
	// and renewed before it expires, without a 401 round trip
	e.clk.Advance(time.Hour - 30*time.Second)
	e.must(as("tok-alice", get), http.StatusOK)
	if n := fk.auths.Load(); n != 3 {
		t.Fatalf("service authentications %d, want 3", n)
	}
}

func TestKeystoneServiceCredentialsRefused(t *testing.T) {
	e, fk, _ := keystoneEnv(t, func(o *KeystoneOptions) { o.Password = "wrong" })
	fk.issue("tok-alice", "alpha", "member")
	e.must(as("tok-alice", req{method: "GET", path: "/v2/queues"}), http.StatusServiceUnavailable)
}

func TestKeystoneConcurrentValidationsCoalesce(t *testing.T) {
	e, fk, _ := keystoneEnv(t, nil)
	fk.issue("tok-alice", "alpha", "member")
	var wg sync.WaitGroup
	statuses := make([]int, 16)
	for i := range statuses {
		wg.Go(func() { statuses[i] = e.do(as("tok-alice", req{method: "GET", path: "/v2/queues"})).status })
	}
	wg.Wait()
	for _, s := range statuses {
		if s != http.StatusOK {
			t.Fatalf("statuses %v", statuses)
		}
	}
	if n := fk.validate.Load(); n != 1 {
		t.Fatalf("16 concurrent requests made %d validations, want 1", n)
	}
}

func TestKeystoneAdminRole(t *testing.T) {
	e, fk, _ := keystoneEnv(t, func(o *KeystoneOptions) { o.AdminRole = "cloud-admin" })
	fk.issue("tok-admin", "admin", "cloud-admin")
	fk.issue("tok-alice", "alpha", "member", "admin")
	for _, path := range []string{"/v2/pools", "/v2/flavors", "/v2/health", "/v2/migrations"} {
		e.must(as("tok-admin", req{method: "GET", path: path}), http.StatusOK)
		assertZaqarError(t, e.must(as("tok-alice", req{method: "GET", path: path}), http.StatusForbidden))
		e.must(as("-", req{method: "GET", path: path}), http.StatusUnauthorized)
	}
}

func TestKeystoneSignedURLWithoutToken(t *testing.T) {
	e, fk, _ := keystoneEnv(t, nil)
	fk.issue("tok-alice", "alpha", "member")
	e.must(as("tok-alice", req{method: "PUT", path: "/v2/queues/shared"}), http.StatusCreated)
	e.must(as("tok-alice", req{method: "POST", path: "/v2/queues/shared/messages", body: `{"messages":[{"ttl":300,"body":1}]}`}), http.StatusCreated)
	var share struct {
		Paths     []string `json:"paths"`
		Methods   []string `json:"methods"`
		Project   string   `json:"project"`
		Expires   string   `json:"expires"`
		Signature string   `json:"signature"`
	}
	e.must(as("tok-alice", req{method: "POST", path: "/v2/queues/shared/share", body: `{}`}), http.StatusOK).decode(t, &share)
	if share.Project != "alpha" {
		t.Fatalf("shared for project %q, want the token's", share.Project)
	}
	signed := map[string]string{"X-Auth-Token": "-", "X-Project-ID": share.Project, "URL-Signature": share.Signature,
		"URL-Expires": share.Expires, "URL-Methods": strings.Join(share.Methods, ","), "URL-Paths": strings.Join(share.Paths, ",")}
	r := e.must(req{method: "GET", path: "/v2/queues/shared/messages?echo=true", header: signed}, http.StatusOK)
	if !strings.Contains(r.String(), `"body":1`) {
		t.Fatalf("signed read: %s", r.body)
	}
	// the signature is bound to its project and never opens the admin API
	signed["X-Project-ID"] = "beta"
	e.must(req{method: "GET", path: "/v2/queues/shared/messages", header: signed}, http.StatusNotFound)
	signed["X-Project-ID"] = share.Project
	e.must(req{method: "GET", path: "/v2/pools", header: signed}, http.StatusUnauthorized)
}

// hammer sends n API requests with token straight to h (no sockets: the
// count, not the transport, is under test), cycling through reads of queue
// q, its messages and stats, the queue list and a ping, with a post every
// 100 requests, and calls tick after each. Every answer must be a 2xx.
func hammer(t *testing.T, h http.Handler, token, q string, n int, tick func()) {
	t.Helper()
	post := struct{ method, path, body string }{"POST", "/v2/queues/" + q + "/messages", `{"messages":[{"ttl":3600,"body":1}]}`}
	routes := []struct{ method, path, body string }{
		{"GET", "/v2/queues/" + q + "/messages?echo=true&limit=1", ""},
		{"GET", "/v2/queues/" + q + "/stats", ""},
		{"GET", "/v2/queues/" + q, ""},
		{"GET", "/v2/queues?limit=1", ""},
		{"HEAD", "/v2/ping", ""},
	}
	for i := range n {
		rt := routes[i%len(routes)]
		if i%100 == 0 {
			rt = post
		}
		r := httptest.NewRequest(rt.method, rt.path, strings.NewReader(rt.body))
		r.Header.Set("X-Auth-Token", token)
		r.Header.Set("Client-ID", clientA)
		if rt.body != "" {
			r.Header.Set("Content-Type", "application/json")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code/100 != 2 {
			t.Fatalf("request %d, %s %s: %d %s", i, rt.method, rt.path, w.Code, w.Body)
		}
		tick()
	}
}

// keystoneRequestsMetric is cistern_keystone_requests_total as /metrics
// shows it.
func keystoneRequestsMetric(t *testing.T, h http.Handler) int {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	for _, line := range strings.Split(w.Body.String(), "\n") {
		var n int
		if _, err := fmt.Sscanf(line, "cistern_keystone_requests_total %d", &n); err == nil {
			return n
		}
	}
	t.Fatalf("no cistern_keystone_requests_total in /metrics:\n%s", w.Body)
	return 0
}

// TestKeystoneRequestsPer10000: the target of at most 2 Keystone requests
// per 10,000 API requests from one client with one token, with the default
// cache_ttl (5 min) and the requests spread over 4 minutes: one service
// authentication and one validation, on the fake's count and on /metrics.
func TestKeystoneRequestsPer10000(t *testing.T) {
	e, fk, _ := keystoneEnv(t, func(o *KeystoneOptions) { o.CacheTTL = 0 })
	fk.issue("tok-alice", "alpha", "member")
	e.must(as("tok-alice", req{method: "PUT", path: "/v2/queues/busy"}), http.StatusCreated)
	hammer(t, e.srv.Handler(), "tok-alice", "busy", 10000-1, func() { e.clk.Advance(24 * time.Millisecond) })
	if n := fk.validate.Load() + fk.auths.Load(); n > 2 {
		t.Errorf("Keystone saw %d requests (%d validations, %d authentications) for 10,000 API requests, want at most 2",
			n, fk.validate.Load(), fk.auths.Load())
	}
	if n := keystoneRequestsMetric(t, e.srv.AdminHandler()); n > 2 {
		t.Errorf("cistern_keystone_requests_total %d after 10,000 API requests with one token, want at most 2", n)
	}
}
