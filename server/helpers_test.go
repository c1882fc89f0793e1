package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/cistern-mq/cistern/drivers"
	"github.com/cistern-mq/cistern/drivers/fsdriver"
	"github.com/cistern-mq/cistern/index"
	"github.com/cistern-mq/cistern/index/enginetest"
	"github.com/cistern-mq/cistern/notify"
)

const (
	clientA = "3381af92-2b9e-11e3-b191-71861300734c"
	clientB = "e7b1d6ac-5b1a-4a1c-9f35-1d6c2a0c9e11"
	project = "demo"
)

// env is a server over a real engine on the fs driver in a temp dir,
// listening on 127.0.0.1 through httptest; or, when the test runs through
// a cluster (clusterEtcdEnv), three nodes behind one front (newClusterEnv).
type env struct {
	t     testing.TB
	url   string
	eng   *index.Engine
	srv   *Server
	clk   *enginetest.Clock // moved by hand; the engine and the server share it
	store drivers.Store
	http  *http.Client
	// members are the nodes of a cluster env (nil for a single node).
	members []*clusterMember
}

type envOpts struct {
	store  drivers.Store // nil: fs driver in t.TempDir()
	server func(*Options)
	real   bool // real clock instead of the fake one
	// single keeps the env a single node even when the test runs through
	// a cluster (clusterEtcdEnv): for tests that play the cluster
	// themselves.
	single bool
	// index changes the engine's options.
	index func(*index.Options)
}

func newEnv(t testing.TB, o envOpts) *env {
	t.Helper()
	if ep := clusterEndpoint(); ep != "" && !o.single {
		return newClusterEnv(t, o, ep)
	}
	e := &env{t: t, clk: enginetest.NewClock(), store: o.store}
	if e.store == nil {
		st, err := fsdriver.New(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		e.store = st
	}
	io := index.Options{Store: e.store, Logger: zerolog.Nop(), NoJanitor: true}
	if !o.real {
		io.Clock = e.clk
	}
	if o.index != nil {
		o.index(&io)
	}
	eng, err := index.Open(context.Background(), io)
	if err != nil {
		t.Fatal(err)
	}
	e.eng = eng
	so := Options{Engine: eng, Logger: zerolog.Nop(), SharedSecret: "test-secret"}
	if !o.real {
		so.Clock = e.clk.Now
	}
	subs, err := notify.NewStore(context.Background(), e.store, so.Clock)
	if err != nil {
		t.Fatal(err)
	}
	so.Subscriptions = subs
	if o.server != nil {
		o.server(&so)
	}
	srv, err := New(so)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	hs := httptest.NewServer(srv.Handler())
	e.url = hs.URL
	e.http = hs.Client()
	t.Cleanup(func() {
		hs.Close()
		eng.Close()
	})
	return e
}

// metrics returns what /metrics shows, of every node of a cluster env
// (each node counts the requests it received).
func (e *env) metrics() string {
	e.t.Helper()
	urls := []string{e.url}
	if e.members != nil {
		urls = urls[:0]
		for _, m := range e.members {
			urls = append(urls, m.http.URL)
		}
	}
	var b strings.Builder
	for _, u := range urls {
		res, err := e.http.Get(u + "/metrics")
		if err != nil {
			e.t.Fatal(err)
		}
		data, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil || res.StatusCode != http.StatusOK {
			e.t.Fatalf("GET %s/metrics: %d %v", u, res.StatusCode, err)
		}
		b.Write(data)
	}
	return b.String()
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r *resp) String() string { return string(r.body) }

// decode unmarshals the body into v, failing the test when it is not JSON.
func (r *resp) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
}

// req is one request; headers default to client A of project demo. A
// header set to "-" is left out.
type req struct {
	method, path, body string
	header             map[string]string
}

func (e *env) do(q req) *resp {
	e.t.Helper()
	var body io.Reader
	if q.body != "" {
		body = strings.NewReader(q.body)
	}
	r, err := http.NewRequest(q.method, e.url+q.path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	h := map[string]string{"Client-ID": clientA, "X-Project-ID": project}
	if q.body != "" {
		h["Content-Type"] = "application/json"
	}
	for k, v := range q.header {
		h[k] = v
	}
	for k, v := range h {
		if v != "-" {
			r.Header[http.CanonicalHeaderKey(k)] = []string{v}
		}
	}
	res, err := e.http.Do(r)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return &resp{status: res.StatusCode, header: res.Header, body: data}
}

// must does q and fails the test unless the status is want.
func (e *env) must(q req, want int) *resp {
	e.t.Helper()
	r := e.do(q)
	if r.status != want {
		e.t.Fatalf("%s %s: status %d, want %d; body %s", q.method, q.path, r.status, want, r.body)
	}
	return r
}

// jsonEq reports whether two JSON documents are equal as values.
func jsonEq(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return bytes.Equal(a, b)
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}
