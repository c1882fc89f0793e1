package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/cistern-mq/cistern/drivers/drivertest"
	"github.com/cistern-mq/cistern/index"
	"github.com/cistern-mq/cistern/index/enginetest"
	"github.com/cistern-mq/cistern/server/wire"
)

// fakeCluster is one node's view of ownership, set by the test: each
// queue's owner URL, "self", or "" (nobody).
type fakeCluster struct {
	mu    sync.Mutex
	owner map[string]string // queue -> owner
	def   string            // owner of any other queue
}

func (c *fakeCluster) Owner(project, queue string) (bool, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	o, ok := c.owner[queue]
	if !ok {
		o = c.def
	}
	if o == "self" {
		return true, ""
	}
	return false, o
}

func (c *fakeCluster) Members() any {
	return []map[string]string{{"id": "node-a"}, {"id": "node-b"}}
}

func (c *fakeCluster) setDefault(owner string) {
	c.mu.Lock()
	c.def = owner
	c.mu.Unlock()
}

// clusterNode is a server in cluster mode over its own engine and store,
// so that whatever a forwarded request does shows in the owner's store
// only.
func clusterNode(t *testing.T, id string, mod func(*Options)) (*env, *fakeCluster) {
	t.Helper()
	fc := &fakeCluster{owner: map[string]string{}, def: "self"}
	e := newEnv(t, envOpts{single: true, server: func(o *Options) {
		o.Cluster, o.NodeID = fc, id
		if mod != nil {
			mod(o)
		}
	}})
	t.Cleanup(e.srv.Close)
	return e, fc
}

func forwarded(s *Server, outcome string) int {
	return int(testutil.ToFloat64(s.fwd.forwarded.WithLabelValues(outcome)))
}

// assertRetryable checks a 503 with Retry-After and Zaqar's JSON body.
func assertRetryable(t *testing.T, r *resp) {
	t.Helper()
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Fatalf("status %d Retry-After %q (body %s), want 503 with Retry-After", r.status, r.header.Get("Retry-After"), r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json", ct)
	}
	assertZaqarError(t, r)
}

// TestForwardSameAnswer: through a node that does not own the queue, a
// client gets exactly what the owner answers (status, body, Location,
// Content-Type) for every verb of a queue's life, and the work happens in
// the owner's store only.
func TestForwardSameAnswer(t *testing.T) {
	a, fa := clusterNode(t, "node-a", nil)
	b, _ := clusterNode(t, "node-b", nil)
	fa.setDefault(b.url)
	sent := 0
	// viaA does q through A and checks that A answered what B did.
	viaA := func(q req, want int) *resp {
		t.Helper()
		sent++
		return a.must(q, want)
	}
	same := func(q req) {
		t.Helper()
		rb := b.do(q)
		ra := viaA(q, rb.status)
		if !bytes.Equal(ra.body, rb.body) {
			t.Fatalf("%s %s: through A %s, at B %s", q.method, q.path, ra.body, rb.body)
		}
		for _, h := range []string{"Content-Type", "Content-Length", "Location"} {
			if ra.header.Get(h) != rb.header.Get(h) {
				t.Fatalf("%s %s: %s through A %q, at B %q", q.method, q.path, h, ra.header.Get(h), rb.header.Get(h))
			}
		}
	}

	r := viaA(req{method: "PUT", path: "/v2/queues/q1", body: `{"_default_message_ttl": 300}`}, 201)
	if r.header.Get("Location") != "/v2/queues/q1" {
		t.Fatalf("Location %q", r.header.Get("Location"))
	}
	var posted wire.PostResult
	r = viaA(req{method: "POST", path: "/v2/queues/q1/messages", body: `{"messages": [{"ttl": 300, "body": {"n": 1}}, {"ttl": 300, "body": "two"}]}`}, 201)
	r.decode(t, &posted)
	if len(posted.Resources) != 2 || !strings.HasPrefix(r.header.Get("Location"), "/v2/queues/q1/messages?ids=") {
		t.Fatalf("post: %s, Location %q", r.body, r.header.Get("Location"))
	}
	same(req{method: "GET", path: "/v2/queues/q1/messages?echo=true"})
	same(req{method: "GET", path: posted.Resources[0]})
	same(req{method: "GET", path: "/v2/queues/q1/stats"})

	var claim wire.Messages
	r = viaA(req{method: "POST", path: "/v2/queues/q1/claims?limit=1", body: `{"ttl": 60, "grace": 60}`}, 201)
	r.decode(t, &claim)
	loc := r.header.Get("Location")
	if !strings.HasPrefix(loc, "/v2/queues/q1/claims/") || len(claim.Messages) != 1 {
		t.Fatalf("claim: %s, Location %q", r.body, loc)
	}
	same(req{method: "GET", path: loc})
	viaA(req{method: "PATCH", path: loc, body: `{"ttl": 120}`}, 204)
	// a claimed message needs its claim id, through A as at B
	viaA(req{method: "DELETE", path: claim.Messages[0].Href[:strings.Index(claim.Messages[0].Href, "?")]}, 403)
	viaA(req{method: "DELETE", path: claim.Messages[0].Href}, 204)
	viaA(req{method: "DELETE", path: loc}, 204)
	same(req{method: "GET", path: "/v2/queues/q1/messages?echo=true&include_claimed=true"})
	viaA(req{method: "DELETE", path: "/v2/queues/q1"}, 204)
	same(req{method: "GET", path: "/v2/queues/q1/stats"})

	if a.eng.Loaded() != 0 {
		t.Fatalf("node A loaded %d queues: it served what B owns", a.eng.Loaded())
	}
	if got := forwarded(a.srv, "ok"); got != sent {
		t.Fatalf("forwarded ok = %d, want %d", got, sent)
	}
	if forwarded(b.srv, "ok") != 0 {
		t.Fatal("the owner forwarded")
	}
}

// TestForwardRequestID: the owner's answer carries the request id once,
// the one the client sent or the forwarding node made.
func TestForwardRequestID(t *testing.T) {
	a, fa := clusterNode(t, "node-a", nil)
	b, _ := clusterNode(t, "node-b", nil)
	fa.setDefault(b.url)
	r := a.must(req{method: "PUT", path: "/v2/queues/q1", header: map[string]string{"X-Openstack-Request-Id": "req-mine"}}, 201)
	if got := r.header.Values("X-Openstack-Request-Id"); len(got) != 1 || got[0] != "req-mine" {
		t.Fatalf("request ids %q, want [req-mine]", got)
	}
	r = a.must(req{method: "GET", path: "/v2/queues/q1/stats"}, 200)
	if got := r.header.Values("X-Openstack-Request-Id"); len(got) != 1 || !strings.HasPrefix(got[0], "req-") {
		t.Fatalf("request ids %q, want one made by A", got)
	}
}

// TestForwardBigBodyThroughOwner: a post near the size limit, sent without
// a Content-Length, lands byte for byte in the owner's store.
func TestForwardBigBodyThroughOwner(t *testing.T) {
	a, fa := clusterNode(t, "node-a", nil)
	b, _ := clusterNode(t, "node-b", nil)
	fa.setDefault(b.url)
	big := strings.Repeat("x", 250_000)
	body := `{"messages": [{"ttl": 300, "body": "` + big + `"}]}`
	rq, err := http.NewRequest("POST", a.url+"/v2/queues/q1/messages", io.MultiReader(strings.NewReader(body))) // no length: chunked
	if err != nil {
		t.Fatal(err)
	}
	rq.Header.Set("Client-ID", clientA)
	rq.Header.Set("X-Project-ID", project)
	rq.Header.Set("Content-Type", "application/json")
	res, err := a.http.Do(rq)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 201 {
		t.Fatalf("post: %d %s", res.StatusCode, data)
	}
	var posted wire.PostResult
	if err := json.Unmarshal(data, &posted); err != nil {
		t.Fatal(err)
	}
	var m struct{ Body string }
	b.must(req{method: "GET", path: posted.Resources[0]}, 200).decode(t, &m)
	if m.Body != big {
		t.Fatalf("body at the owner: %d bytes, want %d", len(m.Body), len(big))
	}
	// over the limit: the owner refuses it, and its 400 comes back
	r := a.must(req{method: "POST", path: "/v2/queues/q1/messages", body: `{"messages": [{"body": "` + big + big + `"}]}`}, 400)
	assertZaqarError(t, r)
}

// TestForwardStreamsBody: the forwarding node sends the body as it comes,
// not once it has it all: the owner sees the first half before the client
// sends the second. The owner's answer comes back as is.
func TestForwardStreamsBody(t *testing.T) {
	firstHalf := make(chan struct{})
	var got struct {
		sync.Mutex
		n int
	}
	owner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadFull(r.Body, make([]byte, 64<<10)); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		close(firstHalf)
		n, _ := io.Copy(io.Discard, r.Body)
		got.Lock()
		got.n = 64<<10 + int(n)
		got.Unlock()
		w.Header().Set("Location", "/v2/queues/q1/messages?ids=abc")
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		w.Header().Set("X-Owner", "yes")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"resources": ["/v2/queues/q1/messages/abc"]}`))
	}))
	t.Cleanup(owner.Close)
	a, fa := clusterNode(t, "node-a", nil)
	fa.setDefault(owner.URL)

	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		if _, err := pw.Write(bytes.Repeat([]byte("a"), 64<<10)); err != nil {
			done <- err
			return
		}
		select {
		case <-firstHalf:
		case <-time.After(30 * time.Second):
			done <- fmt.Errorf("the owner never saw the first half: the body was buffered")
			pw.CloseWithError(io.ErrUnexpectedEOF)
			return
		}
		_, err := pw.Write(bytes.Repeat([]byte("b"), 64<<10))
		pw.Close()
		done <- err
	}()
	rq, err := http.NewRequest("POST", a.url+"/v2/queues/q1/messages", pr)
	if err != nil {
		t.Fatal(err)
	}
	rq.Header.Set("Client-ID", clientA)
	rq.Header.Set("X-Project-ID", project)
	res, err := a.http.Do(rq)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 201 || string(data) != `{"resources": ["/v2/queues/q1/messages/abc"]}` ||
		res.Header.Get("Location") != "/v2/queues/q1/messages?ids=abc" || res.Header.Get("X-Owner") != "yes" ||
		res.Header.Get("Content-Type") != "application/json; charset=UTF-8" {
		t.Fatalf("answer %d %v %s, want the owner's", res.StatusCode, res.Header, data)
	}
	got.Lock()
	defer got.Unlock()
	if got.n != 128<<10 {
		t.Fatalf("owner read %d bytes, want %d", got.n, 128<<10)
	}
}

// TestForwardHeaders: what authenticates and names the request reaches the
// owner: the token, the project the token gives, Client-ID, the query, and
// the mark of the forwarding node.
func TestForwardHeaders(t *testing.T) {
	var seen struct {
		sync.Mutex
		h   http.Header
		uri string
	}
	owner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Lock()
		seen.h, seen.uri = r.Header.Clone(), r.RequestURI
		seen.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(owner.Close)
	fk := newFakeKeystone(t, enginetest.NewClock())
	fk.issue("tok-alice", "alpha", "member")
	ks, err := NewKeystone(KeystoneOptions{URL: fk.url, Username: "cistern", Password: "pw", Project: "service",
		CacheTTL: time.Minute, NegativeTTL: 10 * time.Second, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	a, fa := clusterNode(t, "node-a", func(o *Options) { o.Keystone = ks })
	fa.setDefault(owner.URL)

	a.must(as("tok-alice", req{method: "GET", path: "/v2/queues/q1/messages?echo=true&limit=5"}), 204)
	seen.Lock()
	defer seen.Unlock()
	for k, want := range map[string]string{"X-Auth-Token": "tok-alice", "X-Project-Id": "alpha", "Client-Id": clientA,
		ForwardedHeader: "node-a"} {
		if got := seen.h.Get(k); got != want {
			t.Errorf("owner got %s %q, want %q", k, got, want)
		}
	}
	if seen.uri != "/v2/queues/q1/messages?echo=true&limit=5" {
		t.Errorf("owner got %s", seen.uri)
	}
	// a token Keystone refuses is answered by A: nothing reaches the owner
	seen.h = nil
	seen.Unlock()
	a.must(as("tok-bad", req{method: "GET", path: "/v2/queues/q1/messages"}), 401)
	seen.Lock()
	if seen.h != nil {
		t.Error("a request A refused was forwarded")
	}
}

// TestForwardSignedURL: a pre-signed request carries no token; its URL-*
// headers reach the owner, which checks them itself.
func TestForwardSignedURL(t *testing.T) {
	a, fa := clusterNode(t, "node-a", nil)
	b, _ := clusterNode(t, "node-b", nil)
	fa.setDefault(b.url)
	a.must(req{method: "POST", path: "/v2/queues/q1/messages", body: `{"messages": [{"ttl": 300, "body": "hi"}]}`}, 201)
	var sh wire.ShareResult
	a.must(req{method: "POST", path: "/v2/queues/q1/share", body: `{"methods": ["GET"]}`}, 200).decode(t, &sh)
	h := grantHeaders(sh)
	r := a.must(req{method: "GET", path: "/v2/queues/q1/messages?echo=true", header: h}, 200)
	if !strings.Contains(r.String(), `"hi"`) {
		t.Fatalf("signed GET through A: %s", r.body)
	}
}

// TestForwardNoOwner: nobody owns the queue yet: a retry-able 503, and
// nothing is served here.
func TestForwardNoOwner(t *testing.T) {
	a, fa := clusterNode(t, "node-a", nil)
	fa.setDefault("")
	r := a.do(req{method: "POST", path: "/v2/queues/q1/messages", body: `{"messages": [{"body": 1}]}`})
	assertRetryable(t, r)
	if forwarded(a.srv, "no_owner") != 1 || a.eng.Loaded() != 0 {
		t.Fatalf("no_owner = %d, loaded %d", forwarded(a.srv, "no_owner"), a.eng.Loaded())
	}
}

// TestForwardLoop: ownership moved while a request was forwarded: the node
// it reached does not own the queue either, and sends it on to the owner
// it knows, once (two hops at most); a third node that does not own it
// answers 503 rather than forwarding it again. The client gets that 503.
func TestForwardLoop(t *testing.T) {
	var fourth struct {
		sync.Mutex
		n int
	}
	d := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fourth.Lock()
		fourth.n++
		fourth.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(d.Close)
	a, fa := clusterNode(t, "node-a", nil)
	b, fb := clusterNode(t, "node-b", nil)
	c, fc := clusterNode(t, "node-c", nil)
	fa.setDefault(b.url)
	fb.setDefault(c.url)
	fc.setDefault(d.URL)
	r := a.do(req{method: "GET", path: "/v2/queues/q1/stats"})
	assertRetryable(t, r)
	if r.header.Get("Retry-After") != "1" {
		t.Fatalf("Retry-After %q, want 1", r.header.Get("Retry-After"))
	}
	fourth.Lock()
	defer fourth.Unlock()
	if fourth.n != 0 {
		t.Fatalf("forwarded three times: the fourth node got %d requests", fourth.n)
	}
	if forwarded(c.srv, "loop") != 1 || forwarded(b.srv, "ok") != 1 || forwarded(a.srv, "ok") != 1 {
		t.Fatalf("loop at C = %d, ok at B = %d, ok at A = %d", forwarded(c.srv, "loop"), forwarded(b.srv, "ok"), forwarded(a.srv, "ok"))
	}
	// The second hop reaches the owner: the hand-off is absorbed.
	fc.setDefault("self")
	a.must(req{method: "PUT", path: "/v2/queues/q1"}, 201)
	// A request a client marks itself is served where the node owns it.
	fb.setDefault("")
	b.must(req{method: "PUT", path: "/v2/queues/q2", header: map[string]string{ForwardedHeader: "x"}}, 503)
	fb.setDefault("self")
	b.must(req{method: "PUT", path: "/v2/queues/q2", header: map[string]string{ForwardedHeader: "x"}}, 201)
}

// TestForwardRedialsNewOwner: the owner a node knew exited a moment ago
// (its port refuses): nothing of the request was sent, so the node asks
// again and sends it to the new owner.
func TestForwardRedialsNewOwner(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	b, fb := clusterNode(t, "node-b", nil)
	fb.setDefault("self")
	hc := &redialCluster{first: deadURL, then: b.url}
	a, _ := clusterNode(t, "node-a", func(o *Options) { o.Cluster = hc })
	a.must(req{method: "PUT", path: "/v2/queues/q1"}, 201)
	if b.eng.Loaded() != 1 {
		t.Fatalf("new owner loaded %d queues", b.eng.Loaded())
	}
}

// redialCluster names a dead owner first, then the new one.
type redialCluster struct {
	mu          sync.Mutex
	calls       int
	first, then string
}

func (c *redialCluster) Owner(string, string) (bool, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.calls == 1 {
		return false, c.first
	}
	return false, c.then
}

func (c *redialCluster) Members() any { return nil }

// TestForwardOwnerDown: an owner that does not answer, or drops the
// connection while the body is being sent, is a 503 with Retry-After and a
// Zaqar body, never a 502 or an HTML page.
func TestForwardOwnerDown(t *testing.T) {
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	cut := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadFull(r.Body, make([]byte, 1024))
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	t.Cleanup(cut.Close)
	a, fa := clusterNode(t, "node-a", nil)
	for i, c := range []struct {
		name, owner string
		q           req
	}{
		{"refused", gone.URL, req{method: "GET", path: "/v2/queues/q1/stats"}},
		{"refused with a body", gone.URL, req{method: "POST", path: "/v2/queues/q1/messages", body: `{"messages": [{"body": 1}]}`}},
		{"cut mid-body", cut.URL, req{method: "POST", path: "/v2/queues/q1/messages",
			body: `{"messages": [{"body": "` + strings.Repeat("z", 100_000) + `"}]}`}},
		{"not a URL", "ftp://x", req{method: "GET", path: "/v2/queues/q1/stats"}},
	} {
		fa.setDefault(c.owner)
		r := a.do(c.q)
		assertRetryable(t, r)
		if strings.Contains(r.String(), gone.URL[len("http://"):]) {
			t.Errorf("%s: the answer names the owner: %s", c.name, r.body)
		}
		if got := forwarded(a.srv, "error"); got != i+1 {
			t.Errorf("%s: error = %d, want %d", c.name, got, i+1)
		}
	}
}

// TestForwardListNotForwarded: the list of queues reads the shared catalog
// and spans owners: any node answers it itself.
func TestForwardListNotForwarded(t *testing.T) {
	a, fa := clusterNode(t, "node-a", nil)
	fa.setDefault("")
	a.must(req{method: "GET", path: "/v2/queues"}, 200)
	a.must(req{method: "GET", path: "/v2/ping"}, 204)
	if n := forwarded(a.srv, "no_owner"); n != 0 {
		t.Fatalf("no_owner = %d: a route without a queue asked for an owner", n)
	}
}

// TestForwardAccessLog: the forwarding node's line names the owner; the
// owner's names the node that forwarded.
func TestForwardAccessLog(t *testing.T) {
	var la, lb syncBuffer
	a, fa := clusterNode(t, "node-a", func(o *Options) { o.Logger = zerolog.New(&la) })
	b, _ := clusterNode(t, "node-b", func(o *Options) { o.Logger = zerolog.New(&lb) })
	fa.setDefault(b.url)
	a.must(req{method: "PUT", path: "/v2/queues/q1"}, 201)
	host := strings.TrimPrefix(b.url, "http://")
	drivertest.Eventually(t, "the access log lines", func() bool {
		return strings.Contains(la.String(), `"forwarded_to":"`+host+`"`) && strings.Contains(lb.String(), `"forwarded_by":"node-a"`)
	})
}

// TestClusterHealth: the admin health names this node and the members;
// the public one does not.
func TestClusterHealth(t *testing.T) {
	a, _ := clusterNode(t, "node-a", nil)
	admin := httptest.NewServer(a.srv.AdminHandler())
	t.Cleanup(admin.Close)
	var h struct {
		Node    string
		Cluster []map[string]string
	}
	code, body := call(t, "GET", admin.URL+"/v2/health", "")
	if code != 200 {
		t.Fatalf("admin health: %d %s", code, body)
	}
	if err := json.Unmarshal([]byte(body), &h); err != nil || h.Node != "node-a" || len(h.Cluster) != 2 {
		t.Fatalf("admin health %s (%v)", body, err)
	}
	r := a.must(req{method: "GET", path: "/v2/health"}, 200)
	if strings.Contains(r.String(), "node-a") || strings.Contains(r.String(), "cluster") {
		t.Fatalf("public health shows the cluster: %s", r.body)
	}
}

// TestSingleNodeNotForwarding: without a cluster nothing is forwarded, a
// mark from a client changes nothing, and a cluster needs a node id.
func TestSingleNodeNotForwarding(t *testing.T) {
	e := newEnv(t, envOpts{single: true})
	if e.srv.fwd != nil {
		t.Fatal("a forwarder without a cluster")
	}
	e.must(req{method: "PUT", path: "/v2/queues/q1", header: map[string]string{ForwardedHeader: "x"}}, 201)
	if _, err := New(Options{Engine: e.eng, Cluster: &fakeCluster{}}); err == nil {
		t.Fatal("a cluster without a node id was accepted")
	}
}

// TestNotOwnerIsRetryable: the engine's "not the owner" (ownership moved
// between the forward decision and the engine) is a 503 with Retry-After.
func TestNotOwnerIsRetryable(t *testing.T) {
	e := newEnv(t, envOpts{})
	rq := &request{r: httptest.NewRequest("GET", "/v2/queues/q1/stats", nil), vars: map[string]string{"queue_name": "q1"}, project: project}
	ae := e.srv.toAPIError(rq, fmt.Errorf("stats: %w", index.ErrNotOwner))
	if ae.status != http.StatusServiceUnavailable || ae.retryAfter == 0 || ae.description == "" {
		t.Fatalf("ErrNotOwner answered %+v", ae)
	}
}

// TestForwardAnswerBrokenOff: an owner that dies in the middle of its
// answer (headers sent): the client's connection is cut too, so that it
// sees a broken answer rather than a short one taken for whole, and the
// forward counts as an error with its access log line.
func TestForwardAnswerBrokenOff(t *testing.T) {
	owner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"messages": [`))
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	t.Cleanup(owner.Close)
	var logs syncBuffer
	a, fa := clusterNode(t, "node-a", func(o *Options) { o.Logger = zerolog.New(&logs) })
	fa.setDefault(owner.URL)
	rq, err := http.NewRequest("GET", a.url+"/v2/queues/q1/messages", nil)
	if err != nil {
		t.Fatal(err)
	}
	rq.Header.Set("Client-ID", clientA)
	rq.Header.Set("X-Project-ID", project)
	res, err := a.http.Do(rq)
	if err == nil {
		_, err = io.ReadAll(res.Body)
		res.Body.Close()
	}
	if err == nil {
		t.Fatal("a broken answer read as whole")
	}
	drivertest.Eventually(t, "the error counted and the request logged", func() bool {
		return forwarded(a.srv, "error") == 1 && strings.Contains(logs.String(), `"forwarded_to"`) &&
			strings.Contains(logs.String(), `"message":"request"`)
	})
}

// handOffCluster owns nothing for its first calls (a hand-off under way),
// then names its owner.
type handOffCluster struct {
	mu    sync.Mutex
	calls int
	owner string
}

func (c *handOffCluster) Owner(string, string) (bool, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.calls <= 3 {
		return false, ""
	}
	return false, c.owner
}

func (c *handOffCluster) Members() any { return nil }

// TestForwardWaitsOutHandOff: a shard is without an owner for a moment
// while a node hands it over; a request that arrives then waits for the
// new owner instead of failing.
func TestForwardWaitsOutHandOff(t *testing.T) {
	b, fb := clusterNode(t, "node-b", nil)
	fb.setDefault("self")
	hc := &handOffCluster{owner: b.url}
	a, _ := clusterNode(t, "node-a", func(o *Options) { o.Cluster = hc })
	a.must(req{method: "PUT", path: "/v2/queues/q1"}, 201)
	if forwarded(a.srv, "ok") != 1 || b.eng.Loaded() != 1 || hc.calls < 4 {
		t.Fatalf("ok = %d, owner loaded %d, %d ownership looks", forwarded(a.srv, "ok"), b.eng.Loaded(), hc.calls)
	}
}
