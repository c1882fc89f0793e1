package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cistern-mq/cistern/drivers"
	"github.com/cistern-mq/cistern/drivers/drivertest"
	"github.com/cistern-mq/cistern/drivers/memdriver"
	"github.com/cistern-mq/cistern/index"
	"github.com/cistern-mq/cistern/server/wire"
)

// countingBody is a request body that counts what the server reads and
// never ends on its own: a server that reads past its limit would see
// endless bytes.
type countingBody struct{ n atomic.Int64 }

func (b *countingBody) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	b.n.Add(int64(len(p)))
	return len(p), nil
}

func (b *countingBody) Close() error { return nil }

// serve runs one request through the handler in process, so the test
// controls Content-Length and the body exactly.
func serve(t *testing.T, s *Server, method, path string, body io.ReadCloser, contentLength int64, header map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, path, nil)
	r.Body = body
	r.ContentLength = contentLength
	r.Header.Set("Client-ID", clientA)
	r.Header.Set("X-Project-ID", project)
	r.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, r)
	return w
}

func TestBodyLimits(t *testing.T) {
	e := newEnv(t, envOpts{})
	tooLarge := `{"title": "Invalid API request", "description": "Message collection size is too large. Max size 262144"}`
	for _, c := range []struct {
		name      string
		method    string
		path      string
		length    int64 // declared Content-Length; -1: none (chunked)
		maxRead   int64 // the most the server may read
		status    int
		want      string
		patchType bool
	}{
		{"post declared too large", "POST", "/v2/queues/l/messages", 262145, 0, 400, tooLarge, false},
		{"post chunked too large", "POST", "/v2/queues/l/messages", -1, 262144 + 64<<10, 400, tooLarge, false},
		{"post lying length", "POST", "/v2/queues/l/messages", 100, 262144 + 64<<10, 400, tooLarge, false},
		{"put metadata declared", "PUT", "/v2/queues/l", 65537, 0, 400,
			`{"title": "Invalid API request", "description": "Queue metadata is too large. Max size: 65536"}`, false},
		{"put metadata chunked", "PUT", "/v2/queues/l", -1, 65536 + 64<<10, 400,
			`{"title": "Invalid API request", "description": "Queue metadata is too large. Max size: 65536"}`, false},
		{"patch declared", "PATCH", "/v2/queues/l", 65537, 0, 400,
			`{"title": "Invalid request body", "description": "Queue metadata is too large. Max size: 65536"}`, true},
		{"claim chunked", "POST", "/v2/queues/l/claims", -1, 65536 + 64<<10, 400,
			`{"title": "Invalid request body", "description": "Request body is larger than 65536 bytes."}`, false},
		{"share declared", "POST", "/v2/queues/l/share", 1 << 30, 0, 400,
			`{"title": "Invalid request body", "description": "Request body is larger than 65536 bytes."}`, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			body := &countingBody{}
			h := map[string]string{}
			if c.patchType {
				h["Content-Type"] = wire.PatchContentType
			}
			w := serve(t, e.srv, c.method, c.path, body, c.length, h)
			if w.Code != c.status || !jsonEq(w.Body.Bytes(), []byte(c.want)) {
				t.Fatalf("%d %s, want %d %s", w.Code, w.Body, c.status, c.want)
			}
			if n := body.n.Load(); n > c.maxRead {
				t.Fatalf("read %d bytes, at most %d allowed", n, c.maxRead)
			}
		})
	}

	// The queue's own _max_messages_post_size applies too.
	e.must(req{method: "PUT", path: "/v2/queues/small", body: `{"_max_messages_post_size": 100}`}, 201)
	big := `{"messages": [{"body": "` + strings.Repeat("x", 100) + `"}]}`
	r := e.must(req{method: "POST", path: "/v2/queues/small/messages", body: big}, 400)
	want := `{"title": "Invalid API request", "description": "Message collection size is too large. The max size for current queue is 100. It is calculated by max size = min(max_messages_post_size_config: 262144, max_messages_post_size_queue: 100)."}`
	if !jsonEq(r.body, []byte(want)) {
		t.Fatalf("queue limit: %s", r.body)
	}
	e.must(req{method: "POST", path: "/v2/queues/small/messages", body: `{"messages": [{"body": 1}]}`}, 201)

	// The count has its own cap (TestPostMessageCount); up to it, only
	// the bytes count.
	e.must(req{method: "POST", path: "/v2/queues/many/messages", body: postOf(100)}, 201)
}

func TestLimitsOptions(t *testing.T) {
	if err := (Limits{}).Validate(); err != nil {
		t.Fatalf("zero limits: %v", err)
	}
	if err := DefaultLimits().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, bad := range []Limits{
		{MinMessageTTL: 100, MaxMessageTTL: 50},
		{DefaultMessageTTL: 30},
		{DefaultClaimTTL: 50000},
		{MaxMessagesPerPage: 5},
		{MaxSmallBody: -1},
		{MaxMessagesPerPost: -1},
		{MaxSignedURLTTL: 1 << 40},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v passed", bad)
		}
	}
	if _, err := New(Options{}); err == nil {
		t.Error("New without an engine")
	}
	e := newEnv(t, envOpts{server: func(o *Options) {
		o.Limits = Limits{MaxMessagesPerPage: 5, DefaultMessagesPerPage: 2, MaxMessageTTL: 600, DefaultMessageTTL: 300}
	}})
	e.must(req{method: "GET", path: "/v2/queues/q/messages?limit=6"}, 400)
	r := e.must(req{method: "POST", path: "/v2/queues/q/messages", body: `{"messages": [{"body": 1, "ttl": 601}]}`}, 400)
	if !strings.Contains(r.String(), "may not exceed 600 seconds") {
		t.Fatalf("custom max ttl: %s", r.body)
	}
	r = e.must(req{method: "GET", path: "/v2/queues/q"}, 200)
	if !strings.Contains(r.String(), `"_default_message_ttl":300`) {
		t.Fatalf("defaults: %s", r.body)
	}
	if _, err := New(Options{Engine: e.eng, Limits: Limits{MinClaimTTL: 10, MaxClaimTTL: 5}}); err == nil {
		t.Error("New with bad limits")
	}
	// Two servers may share one registry.
	if _, err := New(Options{Engine: e.eng, Registry: e.srv.Registry()}); err != nil {
		t.Errorf("shared registry: %v", err)
	}
}

// TestStoreFaults: a store that fails is a 503 with Retry-After and
// Zaqar's description of what could not be done, never a 500.
func TestStoreFaults(t *testing.T) {
	mem := memdriver.New()
	e := newEnv(t, envOpts{store: mem})
	e.must(req{method: "PUT", path: "/v2/queues/f"}, 201)
	var down atomic.Bool
	mem.SetFault(func(op memdriver.Op, container, key string) error {
		if down.Load() {
			return drivers.Errorf(drivers.ErrUnavailable, "store down for the test")
		}
		return nil
	})
	down.Store(true)
	for _, c := range []struct {
		name string
		req  req
		desc string
	}{
		{"post", req{method: "POST", path: "/v2/queues/f/messages", body: `{"messages": [{"body": 1}]}`}, "Messages could not be enqueued. Please try again in a few seconds."},
		{"list queues", req{method: "GET", path: "/v2/queues"}, "Queues could not be listed. Please try again in a few seconds."},
		{"create queue", req{method: "PUT", path: "/v2/queues/g"}, "Queue could not be created. Please try again in a few seconds."},
		{"ping", req{method: "GET", path: "/v2/ping"}, "The store could not be reached. Please try again in a few seconds."},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.must(c.req, 503)
			if r.header.Get("Retry-After") != "1" {
				t.Errorf("Retry-After %q", r.header.Get("Retry-After"))
			}
			want := `{"title": "Service temporarily unavailable", "description": "` + c.desc + `"}`
			if !jsonEq(r.body, []byte(want)) {
				t.Errorf("body %s, want %s", r.body, want)
			}
		})
	}
	e.must(req{method: "HEAD", path: "/v2/ping"}, 204)
	var h wire.Health
	e.must(req{method: "GET", path: "/v2/health"}, 200).decode(t, &h)
	if h.StorageReachable || len(h.Pools) != 0 {
		t.Errorf("health with the store down: %+v", h)
	}
	down.Store(false)
	drivertest.Eventually(t, "the queue to come back", func() bool {
		return e.do(req{method: "POST", path: "/v2/queues/f/messages", body: `{"messages": [{"body": 1}]}`}).status == 201
	})
	e.must(req{method: "GET", path: "/v2/ping"}, 204)
}

func TestErrorMapping(t *testing.T) {
	e := newEnv(t, envOpts{})
	rq := &request{id: "req-x", r: httptest.NewRequest("GET", "/v2/queues/q/claims/c", nil),
		vars: map[string]string{"queue_name": "q", "claim_id": "c"}, project: "p", rt: &route{fail: "Claim could not be queried."}}
	_, panicked := e.srv.call(&route{h: func(*Server, *request) (reply, error) { panic("bug") }}, rq)
	for _, c := range []struct {
		err    error
		status int
		desc   string
	}{
		{panicked, 500, "The server failed to complete the request; its log has the details under request id req-x."},
		{errors.New("boom"), 500, "The server failed to complete the request; its log has the details under request id req-x."},
		{fmt.Errorf("wrapped: %w", index.ErrClaimNotFound), 404, "Claim c does not exist in queue q for project p"},
		{index.ErrQueueNotFound, 404, "Queue q does not exist for project p"},
		{index.ErrFenced, 503, "Claim could not be queried. Please try again in a few seconds."},
		{index.ErrClosed, 503, "Claim could not be queried. Please try again in a few seconds."},
		{drivers.Errorf(drivers.ErrInvalid, "odd"), 400, "The object store refused a name or value of this request as invalid."},
		{drivers.Errorf(drivers.ErrNotFound, "lost"), 503, "Claim could not be queried. Please try again in a few seconds."},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), 503, "Claim could not be queried. Please try again in a few seconds."},
		{index.ErrMessageNotClaimedBy, 403, "This message is claimed; it cannot be deleted without a valid claim ID."},
		{&wire.ValidationError{Title: "T", Description: "D"}, 400, "D"},
		{&http.MaxBytesError{Limit: 5}, 400, "Request body is larger than 5 bytes."},
	} {
		ae := e.srv.toAPIError(rq, c.err)
		if ae.status != c.status || ae.description != c.desc {
			t.Errorf("%v: %d %q, want %d %q", c.err, ae.status, ae.description, c.status, c.desc)
		}
		if ae.status == 503 && ae.retryAfter != 1 {
			t.Errorf("%v: no Retry-After", c.err)
		}
	}
}

// TestSignedURLs: /share signs as Zaqar does and the URL-* headers open
// exactly what was signed.
func TestSignedURLs(t *testing.T) {
	// A vector computed with zaqar.common.urls.create_signed_url.
	exp, _ := time.Parse(signedTimeFormat, "2030-01-02T03:04:05")
	got := signURL([]byte("test-secret"), []string{"/v2/queues/wire-demo/messages", "/v2/queues/wire-demo/claims"}, []string{"POST", "GET"}, "demo", exp)
	if got.Signature != "082cdb0a327dc4f92ed3c159766a24f2f2c2980c196d6502c231ccbcd7ce032e" || got.Paths[0] != "/v2/queues/wire-demo/claims" || got.Methods[0] != "GET" {
		t.Fatalf("signature %+v", got)
	}
	tz, err := parseExpires("2030-01-02T03:04:05.123456+01:00", time.Unix(0, 0), 100*365*24*time.Hour)
	if err != nil || signURL([]byte("test-secret"), []string{"/v2/queues/q/messages"}, []string{"GET"}, "None", tz).Signature != "010fa7d5e72c54363f2346615e90515aafb60a27978439ddc111303a77cd0955" {
		t.Fatalf("offset expiry: %v %v", tz, err)
	}

	e := newEnv(t, envOpts{})
	e.must(req{method: "POST", path: "/v2/queues/s/messages", body: `{"messages": [{"body": 1}]}`}, 201)
	var sh wire.ShareResult
	e.must(req{method: "POST", path: "/v2/queues/s/share", body: `{"paths": ["messages", "claims"], "methods": ["GET", "POST"], "expires": "2027-06-01T00:00:00Z"}`}, 200).decode(t, &sh)
	if sh.Expires != "2027-06-01T00:00:00" || len(sh.Paths) != 2 {
		t.Fatalf("share %+v", sh)
	}
	signed := func(method, path string, mod func(h map[string]string)) int {
		h := map[string]string{"URL-Signature": sh.Signature, "URL-Expires": sh.Expires,
			"URL-Methods": strings.Join(sh.Methods, ","), "URL-Paths": strings.Join(sh.Paths, ","), "Client-ID": clientB}
		if mod != nil {
			mod(h)
		}
		body := ""
		if method == "POST" {
			body = `{}`
		}
		return e.do(req{method: method, path: path, header: h, body: body}).status
	}
	for _, c := range []struct {
		name   string
		method string
		path   string
		mod    func(map[string]string)
		status int
	}{
		{"ok", "GET", "/v2/queues/s/messages", nil, 200},
		{"claims", "POST", "/v2/queues/s/claims", nil, 201},
		{"method not signed", "DELETE", "/v2/queues/s/messages?pop=1", nil, 404},
		{"path not signed", "GET", "/v2/queues/s/stats", nil, 404},
		{"other project", "GET", "/v2/queues/s/messages", func(h map[string]string) { h["X-Project-ID"] = "other" }, 404},
		{"tampered methods", "GET", "/v2/queues/s/messages", func(h map[string]string) { h["URL-Methods"] = "GET,POST,DELETE" }, 404},
		{"expired", "GET", "/v2/queues/s/messages", func(h map[string]string) { h["URL-Expires"] = "2020-01-01T00:00:00" }, 404},
		{"empty signature", "GET", "/v2/queues/s/messages", func(h map[string]string) { h["URL-Signature"] = "" }, 404},
	} {
		if got := signed(c.method, c.path, c.mod); got != c.status {
			t.Errorf("%s: %d, want %d", c.name, got, c.status)
		}
	}

	for _, c := range []struct{ body, desc string }{
		{`{"expires": "2000-01-01T00:00:00"}`, "`expires` is lower than the current time"},
		{`{"expires": 12345}`, "`expires` should be date format, for example 2016-01-01T00:00:00, not integer value: 12345"},
		{`{"expires": "12345"}`, "`expires` should be date format, for example 2016-01-01T00:00:00, not integer value: 12345"},
		{`{"expires": "soon"}`, "Unable to parse date string 'soon'"},
		{`{"paths": ["queues"]}`, "Invalid paths: {'queues'}"},
		{`{"ttl": 5}`, "Unknown keys: {'ttl'}"},
	} {
		r := e.must(req{method: "POST", path: "/v2/queues/s/share", body: c.body}, 400)
		if want := `{"title": "Invalid API request", "description": ` + fmt.Sprintf("%q", c.desc) + `}`; !jsonEq(r.body, []byte(want)) {
			t.Errorf("%s: %s, want %s", c.body, r.body, want)
		}
	}

	noKey := newEnv(t, envOpts{server: func(o *Options) { o.SharedSecret = "" }})
	r := noKey.must(req{method: "POST", path: "/v2/queues/s/share", body: `{}`}, 400)
	if !jsonEq(r.body, []byte("{\"title\": \"Invalid API request\", \"description\": \"The `key` can't be None\"}")) {
		t.Fatalf("no secret: %s", r.body)
	}
}

// TestAccessLog: one structured line per request with the route template,
// the queue, the client's address and the duration in milliseconds (the
// unit used to be nowhere in the line).
func TestAccessLog(t *testing.T) {
	var buf syncBuffer
	e := newEnv(t, envOpts{server: func(o *Options) { o.Logger = zerolog.New(&buf) }})
	e.must(req{method: "GET", path: "/v2/queues/logged/stats", header: map[string]string{"X-Openstack-Request-Id": "req-log"}}, 200)
	line := buf.String()
	for _, want := range []string{`"method":"GET"`, `"route":"/v2/queues/{queue_name}/stats"`, `"queue":"logged"`, `"status":200`, `"request_id":"req-log"`, `"project":"demo"`, `"duration_ms":`, `"remote_addr":"127.0.0.1:`} {
		if !strings.Contains(line, want) {
			t.Errorf("log line %s lacks %s", line, want)
		}
	}
	// A refused queue name is not logged.
	buf.mu.Lock()
	buf.buf.Reset()
	buf.mu.Unlock()
	e.must(req{method: "GET", path: "/v2/queues/" + strings.Repeat("x", 200) + "/stats"}, 400)
	if line := buf.String(); strings.Contains(line, `"queue":`) {
		t.Errorf("refused queue name logged: %s", line)
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
