package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/cistern-mq/cistern/drivers"
	"github.com/cistern-mq/cistern/drivers/memdriver"
)

// raw runs one request in process with exactly the header lines given
// (httptest.NewRequest sends what a real client could not, such as
// control bytes), on top of client A's Client-ID unless overridden.
func raw(t *testing.T, s *Server, method, path, body string, header http.Header) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.Header["Client-Id"] = []string{clientA}
	r.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		r.Header[http.CanonicalHeaderKey(k)] = v
	}
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, r)
	return w
}

// TestProjectIDRules: a project id that cannot become a store key is a
// 400 on every route. It used to reach the store and come back as a 503
// with Retry-After, so clients retried it forever.
func TestProjectIDRules(t *testing.T) {
	e := newEnv(t, envOpts{})
	post := `{"messages": [{"body": 1}]}`
	for _, c := range []struct {
		name    string
		project string
		want    int
	}{
		{"plain", "tenant-1", 201},
		{"255 plain bytes", strings.Repeat("p", 255), 201},
		{"85 percent signs (255 bytes escaped)", strings.Repeat("%", 85), 201},
		{"slashes and spaces", "a/b c", 201},
		{"non-ASCII UTF-8", "projet-é", 201},
		{"Latin-1 byte 0xE9", "caf\xe9", 400},
		{"253 slashes", strings.Repeat("/", 253), 400},
		{"86 percent signs (258 bytes escaped)", strings.Repeat("%", 86), 400},
		{"257 bytes", strings.Repeat("p", 257), 400},
		{"NUL", "a\x00b", 400},
		{"tab", "a\tb", 400},
		{"dot", ".", 400},
		{"dot dot", "..", 400},
	} {
		h := http.Header{"X-Project-Id": {c.project}}
		if w := raw(t, e.srv, "POST", "/v2/queues/q/messages", post, h); w.Code != c.want {
			t.Errorf("%s: post %d %s, want %d", c.name, w.Code, w.Body, c.want)
		}
		// Routes without a queue name check the project too.
		want := 200
		if c.want != 201 {
			want = 400
		}
		if w := raw(t, e.srv, "GET", "/v2/queues", "", h); w.Code != want {
			t.Errorf("%s: list %d %s, want %d", c.name, w.Code, w.Body, want)
		}
	}
	w := raw(t, e.srv, "GET", "/v2/ping", "", http.Header{"X-Project-Id": {"caf\xe9"}})
	if want := `{"title": "Invalid project identification", "description": "The format of the submitted project id is not valid: the project id is not valid UTF-8."}`; w.Code != 400 || !jsonEq(w.Body.Bytes(), []byte(want)) {
		t.Errorf("ping: %d %s, want 400 %s", w.Code, w.Body, want)
	}
}

// TestProjectIDNotLoggedWhole: a 900 KB X-Project-ID wrote a 900 KB
// access log line; a refused project id is not logged at all.
func TestProjectIDNotLoggedWhole(t *testing.T) {
	var buf syncBuffer
	e := newEnv(t, envOpts{server: func(o *Options) { o.Logger = zerolog.New(&buf) }})
	huge := strings.Repeat("x", 900<<10)
	if w := raw(t, e.srv, "GET", "/v2/ping", "", http.Header{"X-Project-Id": {huge}}); w.Code != 400 {
		t.Errorf("ping with a 900 KB project: %d", w.Code)
	}
	if n := len(buf.String()); n > 4096 || strings.Contains(buf.String(), "xxxxxxxxxxxxxxxx") {
		t.Errorf("logged %d bytes for one request", n)
	}
}

// TestRepeatedIdentityHeaders: two X-Project-ID (or Client-ID) lines are a
// 400; the first one used to win.
func TestRepeatedIdentityHeaders(t *testing.T) {
	e := newEnv(t, envOpts{})
	for _, c := range []struct {
		name   string
		header http.Header
		want   string
	}{
		{"project", http.Header{"X-Project-Id": {"a", "b"}}, `The "X-Project-ID" header was sent more than once.`},
		{"same project twice", http.Header{"X-Project-Id": {"a", "a"}}, `The "X-Project-ID" header was sent more than once.`},
		{"client", http.Header{"X-Project-Id": {"a"}, "Client-Id": {clientA, clientB}}, `The "Client-ID" header was sent more than once.`},
	} {
		w := raw(t, e.srv, "GET", "/v2/queues/q/stats", "", c.header)
		want, _ := encodeJSON(map[string]string{"title": "Invalid header value", "description": c.want})
		if w.Code != 400 || !jsonEq(w.Body.Bytes(), want) {
			t.Errorf("%s: %d %s, want 400 %s", c.name, w.Code, w.Body, c.want)
		}
	}
}

// TestDotQueueNames: "." and ".." match Zaqar's name pattern, but their
// hrefs collapse into other paths, so Cistern refuses them.
func TestDotQueueNames(t *testing.T) {
	e := newEnv(t, envOpts{})
	h := http.Header{"X-Project-Id": {project}}
	for _, path := range []string{"/v2/queues/.", "/v2/queues/..", "/v2/queues/./messages", "/v2/queues/../stats"} {
		method := "PUT"
		if strings.Contains(path, "messages") {
			method = "POST"
		} else if strings.HasSuffix(path, "stats") {
			method = "GET"
		}
		w := raw(t, e.srv, method, path, `{"messages": [{"body": 1}]}`, h)
		if w.Code != 400 || !strings.Contains(w.Body.String(), "Invalid queue identification") {
			t.Errorf("%s %s: %d %s", method, path, w.Code, w.Body)
		}
	}
	for _, name := range []string{"...", ".a", "a.", "a..b"} {
		if w := raw(t, e.srv, "PUT", "/v2/queues/"+name, "", h); w.Code != 201 {
			t.Errorf("PUT %s: %d %s", name, w.Code, w.Body)
		}
	}
}

// TestDeadLetterQueueName: _dead_letter_queue is a queue name by the same
// rule as in a path. Only its type was checked, so "../evil" or "a/b"
// created queues the API could never address or delete.
func TestDeadLetterQueueName(t *testing.T) {
	e := newEnv(t, envOpts{})
	bad := `{"title": "Invalid API request", "description": "_dead_letter_queue must be a queue name."}`
	for _, c := range []struct {
		value string // JSON
		ok    bool
	}{
		{`"dlq-1.x_y"`, true},
		{`null`, true},
		{`""`, true},
		{`"../evil"`, false},
		{`"a/b"`, false},
		{`"x y"`, false},
		{`"a\u0000b"`, false},
		{`"."`, false},
		{`".."`, false},
		{`"` + strings.Repeat("d", 65) + `"`, false},
		{`"é"`, false},
		{`5`, false},
	} {
		body := `{"_dead_letter_queue": ` + c.value + `, "_max_claim_count": 2}`
		r := e.do(req{method: "PUT", path: "/v2/queues/dl", body: body})
		switch {
		case c.ok && r.status != 201:
			t.Errorf("PUT %s: %d %s", c.value, r.status, r.body)
		case !c.ok && (r.status != 400 || !jsonEq(r.body, []byte(bad))):
			t.Errorf("PUT %s: %d %s, want 400 %s", c.value, r.status, r.body, bad)
		}
		if r.status == 201 {
			e.must(req{method: "DELETE", path: "/v2/queues/dl"}, 204)
		}
	}
	e.must(req{method: "PUT", path: "/v2/queues/dl"}, 201)
	r := e.do(req{method: "PATCH", path: "/v2/queues/dl", body: `[{"op": "add", "path": "/metadata/_dead_letter_queue", "value": "../evil"}]`,
		header: map[string]string{"Content-Type": "application/openstack-messaging-v2.0-json-patch"}})
	if r.status != 400 || !strings.Contains(string(r.body), "_dead_letter_queue must be a queue name.") {
		t.Errorf("PATCH ../evil: %d %s", r.status, r.body)
	}
}

// TestFailureLogBounded: the line a 5xx logs shows at most 256 bytes of
// the path, whose id segments are the client's text.
func TestFailureLogBounded(t *testing.T) {
	var buf syncBuffer
	mem := memdriver.New()
	e := newEnv(t, envOpts{store: mem, server: func(o *Options) { o.Logger = zerolog.New(&buf) }})
	mem.SetFault(func(memdriver.Op, string, string) error {
		return drivers.Errorf(drivers.ErrUnavailable, "store down for the test")
	})
	e.must(req{method: "GET", path: "/v2/queues/q/messages/" + strings.Repeat("x", 200<<10)}, 503)
	if n := len(buf.String()); n > 4096 || !strings.Contains(buf.String(), `"status":503`) {
		t.Errorf("logged %d bytes for one failed request: %.300s", n, buf.String())
	}
}
