package swiftdriver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ncw/swift/v2"

	"github.com/cistern-mq/cistern/drivers"
)

// These tests need no Swift: they run the driver against httptest servers
// on 127.0.0.1 that answer what a test needs.

// fakeStore opens a Store (without New's probes) on a server running h,
// authenticated with a fixed token.
func fakeStore(t *testing.T, h http.HandlerFunc) *Store {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	cfg := Config{StorageURL: srv.URL + "/v1/AUTH_t", AuthToken: "tok", Timeout: 5 * time.Second}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s := open(cfg, newBaseTransport())
	t.Cleanup(func() { s.Close() })
	return s
}

// statusServer answers every request with code.
func statusServer(code int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(code)
		fmt.Fprintf(w, "status %d", code)
	}
}

func TestClassify(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want error
	}{
		{"404", &swift.Error{StatusCode: 404}, drivers.ErrNotFound},
		{"ncw ObjectNotFound", swift.ObjectNotFound, drivers.ErrNotFound},
		{"412 wrapped with a body", fmt.Errorf("%w: precondition", &swift.Error{StatusCode: 412}), drivers.ErrPreconditionFailed},
		{"409 container not empty", swift.ContainerNotEmpty, drivers.ErrPreconditionFailed},
		{"400", swift.BadRequest, drivers.ErrInvalid},
		{"411", &swift.Error{StatusCode: 411}, drivers.ErrInvalid},
		{"413", swift.TooLargeObject, drivers.ErrInvalid},
		{"416", &swift.Error{StatusCode: 416}, drivers.ErrInvalid},
		{"401", swift.AuthorizationFailed, drivers.ErrUnavailable},
		{"403", swift.Forbidden, drivers.ErrUnavailable},
		{"408 ncw timeout", swift.TimeoutError, drivers.ErrUnavailable},
		{"422 corrupted", swift.ObjectCorrupted, drivers.ErrUnavailable},
		{"429", swift.TooManyRequests, drivers.ErrUnavailable},
		{"498", swift.RateLimit, drivers.ErrUnavailable},
		{"500", &swift.Error{StatusCode: 500}, drivers.ErrUnavailable},
		{"503", &swift.Error{StatusCode: 503}, drivers.ErrUnavailable},
		{"507", &swift.Error{StatusCode: 507}, drivers.ErrUnavailable},
		{"ncw status 0", &swift.Error{Text: "Response didn't have storage url and auth token"}, drivers.ErrUnavailable},
		{"connection refused", &url.Error{Op: "Put", URL: "http://x", Err: &net.OpError{Op: "dial", Err: errors.New("connection refused")}}, drivers.ErrUnavailable},
		{"EOF", &url.Error{Op: "Get", URL: "http://x", Err: io.EOF}, drivers.ErrUnavailable},
		{"own timeout", &url.Error{Op: "Get", URL: "http://x", Err: context.DeadlineExceeded}, drivers.ErrUnavailable},
		{"auth", fmt.Errorf("%w: no", errAuth), drivers.ErrUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := fail(context.Background(), tc.err, "op")
			if got := drivers.KindOf(err); got != tc.want {
				t.Errorf("kind of %v = %v, want %v", err, got, tc.want)
			}
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				t.Errorf("%v passes for a context error while the caller's context is alive", err)
			}
		})
	}
	t.Run("caller's context ended", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := fail(ctx, &swift.Error{StatusCode: 503}, "op")
		if !errors.Is(err, context.Canceled) || drivers.KindOf(err) != nil {
			t.Errorf("fail with a cancelled context = %v, want context.Canceled and no kind", err)
		}
	})
	t.Run("401 says authentication", func(t *testing.T) {
		err := fail(context.Background(), swift.AuthorizationFailed, "op")
		if !errors.Is(err, errAuth) || !strings.Contains(err.Error(), "authentication failed") {
			t.Errorf("401: %v, want an authentication failure", err)
		}
	})
}

// TestStatusMapping runs driver calls against a server that answers one
// status to everything.
func TestStatusMapping(t *testing.T) {
	ctx := context.Background()
	rng := &drivers.GetOptions{Range: &drivers.Range{Offset: 5, Length: 2}}
	type call struct {
		name string
		do   func(s *Store) error
	}
	put := call{"Put", func(s *Store) error { return s.Put(ctx, "c", "k", []byte("v"), nil) }}
	createOnly := call{"create-only Put", func(s *Store) error {
		return s.Put(ctx, "c", "k", []byte("v"), &drivers.PutOptions{CreateOnly: true})
	}}
	get := call{"Get", func(s *Store) error { _, err := s.Get(ctx, "c", "k", nil); return err }}
	getRange := call{"ranged Get", func(s *Store) error { _, err := s.Get(ctx, "c", "k", rng); return err }}
	head := call{"Head", func(s *Store) error { _, err := s.Head(ctx, "c", "k"); return err }}
	del := call{"Delete", func(s *Store) error { return s.Delete(ctx, "c", "k") }}
	list := call{"List", func(s *Store) error { _, err := s.List(ctx, "c", nil); return err }}
	create := call{"CreateContainer", func(s *Store) error { return s.CreateContainer(ctx, "c") }}
	delC := call{"DeleteContainer", func(s *Store) error { return s.DeleteContainer(ctx, "c") }}
	listC := call{"ListContainers", func(s *Store) error { _, err := s.ListContainers(ctx, nil); return err }}
	cases := []struct {
		status int
		calls  []call
		want   error // nil: the call succeeds
	}{
		{404, []call{put, get, getRange, head, list}, drivers.ErrNotFound},
		{404, []call{del, delC, listC}, nil},
		{412, []call{put, createOnly}, drivers.ErrPreconditionFailed},
		{409, []call{delC}, drivers.ErrPreconditionFailed},
		{400, []call{put, get, list, create}, drivers.ErrInvalid},
		{411, []call{put}, drivers.ErrInvalid},
		{413, []call{put}, drivers.ErrInvalid},
		{416, []call{getRange}, drivers.ErrInvalid},
		{202, []call{put, create}, nil},
		{202, []call{createOnly}, drivers.ErrPreconditionFailed},
		{401, []call{put, get, head, del, list, create, delC, listC}, drivers.ErrUnavailable},
		{403, []call{put, get}, drivers.ErrUnavailable},
		{429, []call{put, get}, drivers.ErrUnavailable},
		{498, []call{put, get}, drivers.ErrUnavailable},
		{500, []call{put, get, head, del, list, create, delC, listC}, drivers.ErrUnavailable},
		{503, []call{put, get, del}, drivers.ErrUnavailable},
		{507, []call{put}, drivers.ErrUnavailable},
	}
	for _, tc := range cases {
		s := fakeStore(t, statusServer(tc.status))
		for _, c := range tc.calls {
			t.Run(fmt.Sprintf("%d/%s", tc.status, c.name), func(t *testing.T) {
				err := c.do(s)
				if tc.want == nil {
					if err != nil {
						t.Errorf("got %v, want nil", err)
					}
					return
				}
				if got := drivers.KindOf(err); got != tc.want {
					t.Errorf("got %v (kind %v), want %v", err, got, tc.want)
				}
			})
		}
	}
}

func TestAuthTokenRefused(t *testing.T) {
	s := fakeStore(t, statusServer(http.StatusUnauthorized))
	err := s.Put(context.Background(), "c", "k", []byte("v"), nil)
	if !errors.Is(err, drivers.ErrUnavailable) || !errors.Is(err, errAuth) || !strings.Contains(err.Error(), "AuthToken") {
		t.Errorf("Put with a refused token: %v, want ErrUnavailable naming the AuthToken", err)
	}
}

// fakeAuth serves tempauth v1 at /auth/v1.0 with the given status (200:
// a token) and answers every storage request with storage.
func fakeAuth(t *testing.T, authStatus, storage int) (srv *httptest.Server, auths *atomic.Int64) {
	auths = new(atomic.Int64)
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/auth/v1.0" {
			auths.Add(1)
			if authStatus != http.StatusOK {
				w.WriteHeader(authStatus)
				return
			}
			w.Header().Set("X-Storage-Url", "http://"+r.Host+"/v1/AUTH_t")
			w.Header().Set("X-Auth-Token", "tok")
			return
		}
		statusServer(storage)(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, auths
}

func TestAuthFailure(t *testing.T) {
	srv, _ := fakeAuth(t, http.StatusUnauthorized, http.StatusOK)
	_, err := New(context.Background(), Config{AuthURL: srv.URL + "/auth/v1.0", User: "a:b", Key: "wrong"})
	if !errors.Is(err, drivers.ErrUnavailable) || !errors.Is(err, errAuth) || !errors.Is(err, drivers.ErrAuth) || !strings.Contains(err.Error(), `"a:b"`) {
		t.Errorf("New with a wrong key: %v, want ErrUnavailable saying authentication failed for a:b", err)
	}
}

func TestUnauthorizedAfterReauth(t *testing.T) {
	srv, auths := fakeAuth(t, http.StatusOK, http.StatusUnauthorized)
	cfg := Config{AuthURL: srv.URL + "/auth/v1.0", User: "a:b", Key: "k"}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s := open(cfg, newBaseTransport())
	defer s.Close()
	_, err := s.Get(context.Background(), "c", "k", nil)
	if !errors.Is(err, drivers.ErrUnavailable) || !errors.Is(err, errAuth) {
		t.Errorf("Get answered 401 after re-authenticating: %v, want ErrUnavailable, authentication failed", err)
	}
	if n := auths.Load(); n < 2 {
		t.Errorf("authenticated %d times, want a re-authentication after the 401", n)
	}
}

func TestNetworkError(t *testing.T) {
	s := fakeStore(t, statusServer(200))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	s.conn.StorageUrl = "http://" + addr + "/v1/AUTH_t"
	for name, err := range map[string]error{
		"Put": s.Put(context.Background(), "c", "k", []byte("v"), nil),
		"Get": func() error { _, err := s.Get(context.Background(), "c", "k", nil); return err }(),
	} {
		if !errors.Is(err, drivers.ErrUnavailable) {
			t.Errorf("%s to a closed port: %v, want ErrUnavailable", name, err)
		}
	}
}

// hangServer holds every request until the client goes away (or, as a
// safety net, 10 s pass).
func hangServer(started chan<- struct{}) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		// The server notices a closed connection only once the body is read.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case started <- struct{}{}:
		default:
		}
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}
}

func TestContextCancelledInFlight(t *testing.T) {
	started := make(chan struct{}, 1)
	s := fakeStore(t, hangServer(started))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Put(ctx, "c", "k", []byte("v"), nil) }()
	<-started
	cancel()
	err := <-done
	if !errors.Is(err, context.Canceled) || drivers.KindOf(err) != nil {
		t.Errorf("Put cancelled in flight: %v, want context.Canceled and no kind", err)
	}
}

func TestContextCancelledBefore(t *testing.T) {
	var requests atomic.Int64
	s := fakeStore(t, func(w http.ResponseWriter, r *http.Request) { requests.Add(1) })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	errs := []error{
		s.Put(ctx, "c", "k", nil, nil),
		s.Delete(ctx, "c", "k"),
		s.DeleteKeys(ctx, "c", []string{"k"}),
		s.CreateContainer(ctx, "c"),
	}
	for i, err := range errs {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("call %d: %v, want context.Canceled", i, err)
		}
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("%d requests reached the server with a cancelled context", n)
	}
}

func TestDriverTimeout(t *testing.T) {
	s := fakeStore(t, hangServer(nil))
	s.timeout = 100 * time.Millisecond
	_, err := s.Get(context.Background(), "c", "k", nil)
	if !errors.Is(err, drivers.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Get past the driver's timeout: %v, want ErrUnavailable and not the caller's DeadlineExceeded", err)
	}
}

// TestNoExpectHeader: no request leaves the driver with Expect:
// 100-continue (the connection trap described on noExpect).
func TestNoExpectHeader(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	s := fakeStore(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.Header.Get("Expect"))
		mu.Unlock()
		_, _ = io.Copy(io.Discard, r.Body)
		if r.Method == http.MethodPut {
			w.WriteHeader(http.StatusCreated)
		}
	})
	if err := s.Put(context.Background(), "c", "k", []byte("body"), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(context.Background(), "c", "k", []byte("body"), &drivers.PutOptions{CreateOnly: true}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 || seen[0] != "PUT " || seen[1] != "PUT " {
		t.Errorf("requests seen (method, Expect) = %q, want two PUTs without Expect", seen)
	}
}

func TestNoExpectTransport(t *testing.T) {
	got := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("Expect") + "|" + r.Header.Get("X-Keep")
	}))
	defer srv.Close()
	base := newBaseTransport()
	defer base.CloseIdleConnections()
	req, err := http.NewRequest(http.MethodPut, srv.URL, strings.NewReader("body"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Expect", "100-continue")
	req.Header.Set("X-Keep", "yes")
	resp, err := noExpect{next: base}.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if h := <-got; h != "|yes" {
		t.Errorf("server saw Expect|X-Keep = %q, want %q", h, "|yes")
	}
	if req.Header.Get("Expect") != "100-continue" {
		t.Errorf("RoundTrip changed the caller's request headers")
	}
	if base.MaxIdleConnsPerHost < 64 {
		t.Errorf("MaxIdleConnsPerHost = %d, want at least 64", base.MaxIdleConnsPerHost)
	}
}

func TestEmptyObjectRange(t *testing.T) {
	s := fakeStore(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Range", "bytes */0")
		w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
	})
	got, err := s.Get(context.Background(), "c", "k", &drivers.GetOptions{Range: &drivers.Range{Offset: 0, Length: 4}})
	if err != nil || len(got) != 0 {
		t.Errorf("range from 0 of an empty object = %q, %v; want empty, nil", got, err)
	}
}

func TestRangeIgnoredByServer(t *testing.T) {
	s := fakeStore(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "0123456789")
	})
	got, err := s.Get(context.Background(), "c", "k", &drivers.GetOptions{Range: &drivers.Range{Offset: 3, Length: 4}})
	if err != nil || string(got) != "3456" {
		t.Errorf("Get(3, 4) from a server ignoring Range = %q, %v; want 3456", got, err)
	}
}

func TestParseTimestamp(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"1795614398.72036", time.Unix(1795614398, 720360000), true},
		{"1795614398", time.Unix(1795614398, 0), true},
		{"1795614398.00001", time.Unix(1795614398, 10000), true},
		{"", time.Time{}, false},
		{"x.1", time.Time{}, false},
		{"1.-5", time.Time{}, false},
	} {
		got, ok := parseTimestamp(tc.in)
		if ok != tc.ok || !got.Equal(tc.want) {
			t.Errorf("parseTimestamp(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestRangeHeader(t *testing.T) {
	for _, tc := range []struct {
		off, n int64
		want   string
	}{
		{0, 4, "bytes=0-3"},
		{5, 1, "bytes=5-5"},
		{7, -1, "bytes=7-"},
		{10, 1<<63 - 1, "bytes=10-"},
	} {
		if got := rangeHeader(&drivers.Range{Offset: tc.off, Length: tc.n}); got != tc.want {
			t.Errorf("rangeHeader(%d, %d) = %q, want %q", tc.off, tc.n, got, tc.want)
		}
	}
}

// TestBulkFallback: a cluster whose POST ?bulk-delete is no bulk delete
// (204, no JSON) gets one DELETE per key, and no more bulk requests.
func TestBulkFallback(t *testing.T) {
	var mu sync.Mutex
	var reqs []string
	s := fakeStore(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		reqs = append(reqs, r.Method+" "+r.URL.Path)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	for range 2 {
		if err := s.DeleteKeys(context.Background(), "c", []string{"a", "b"}); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"POST /v1/AUTH_t", "DELETE /v1/AUTH_t/c/a", "DELETE /v1/AUTH_t/c/b", "DELETE /v1/AUTH_t/c/a", "DELETE /v1/AUTH_t/c/b"}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(reqs, ",") != strings.Join(want, ",") {
		t.Errorf("requests %q, want %q", reqs, want)
	}
}

func TestBulkReport(t *testing.T) {
	cases := []struct {
		name, report string
		want         error
	}{
		{"ok", `{"Response Status": "200 OK", "Number Deleted": 1, "Number Not Found": 1, "Errors": []}`, nil},
		{"server errors", `{"Response Status": "502 Bad Gateway", "Errors": [["/c/a", "503 Service Unavailable"]]}`, drivers.ErrUnavailable},
		{"not found only", `{"Response Status": "200 OK", "Number Not Found": 2, "Errors": []}`, nil},
		{"conflict", `{"Response Status": "400 Bad Request", "Errors": [["/c/a", "409 Conflict"]]}`, drivers.ErrPreconditionFailed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := fakeStore(t, func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				if r.Method != http.MethodPost || r.URL.Query().Get("bulk-delete") == "" || string(body) != "/c/a\n/c/b%20c\n" {
					t.Errorf("request %s %s body %q", r.Method, r.URL, body)
				}
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, "  \r\n\r\n"+tc.report) // Swift's keep-alive whitespace first
			})
			err := s.DeleteKeys(context.Background(), "c", []string{"a", "b c"})
			if got := drivers.KindOf(err); got != tc.want || (tc.want == nil && err != nil) {
				t.Errorf("DeleteKeys = %v, want kind %v", err, tc.want)
			}
		})
	}
}

func TestBulkable(t *testing.T) {
	s := fakeStore(t, statusServer(200))
	for _, tc := range []struct {
		key  string
		want bool
	}{
		{"a", true},
		{"/", true},
		{"///", true},
		{"/a", true},
		{"a/", true},
		{" ", true},
		{strings.Repeat("k", drivers.MaxKeyLen), true},
		{strings.Repeat("é", drivers.MaxKeyLen/2), false},
	} {
		if got := s.bulkable("dt-0123456789ab", tc.key); got != tc.want {
			t.Errorf("bulkable(%.20q) = %v, want %v", tc.key, got, tc.want)
		}
	}
	if got := bulkLine("c", " a\tb\n%/x?#"); got != "/c/%20a%09b%0A%25/x%3F%23" {
		t.Errorf("bulkLine = %q", got)
	}
}

func TestValidate(t *testing.T) {
	ok := Config{AuthURL: "http://127.0.0.1:8080/auth/v1.0", User: "test:tester", Key: "testing"}
	cases := []struct {
		name   string
		change func(*Config)
		valid  bool
	}{
		{"tempauth", func(*Config) {}, true},
		{"keystone v3", func(c *Config) {
			c.AuthURL, c.UserDomain, c.Project, c.ProjectDomain, c.Region = "https://ks/v3", "Default", "p", "Default", "R1"
		}, true},
		{"token", func(c *Config) { *c = Config{StorageURL: "http://s/v1/AUTH_x", AuthToken: "t"} }, true},
		{"storage URL override", func(c *Config) { c.StorageURL = "http://s/v1/AUTH_x" }, true},
		{"prefix", func(c *Config) { c.ContainerPrefix = "prod.cistern_1-" }, true},
		{"nothing", func(c *Config) { *c = Config{} }, false},
		{"no key", func(c *Config) { c.Key = "" }, false},
		{"token without storage URL", func(c *Config) { *c = Config{AuthToken: "t"} }, false},
		{"token with AuthURL", func(c *Config) { c.AuthToken = "t" }, false},
		{"bad URL", func(c *Config) { c.AuthURL = "127.0.0.1:8080/auth/v1.0" }, false},
		{"unknown auth version", func(c *Config) { c.AuthURL = "http://ks/identity" }, false},
		{"auth version given", func(c *Config) { c.AuthURL, c.AuthVersion = "http://ks/identity", 3 }, true},
		{"auth version 4", func(c *Config) { c.AuthVersion = 4 }, false},
		{"endpoint type", func(c *Config) { c.EndpointType = "private" }, false},
		{"prefix with slash", func(c *Config) { c.ContainerPrefix = "a/b" }, false},
		{"long prefix", func(c *Config) { c.ContainerPrefix = strings.Repeat("p", MaxPrefixLen+1) }, false},
		{"negative timeout", func(c *Config) { c.Timeout = -time.Second }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.change(&c)
			err := c.Validate()
			if tc.valid && err != nil {
				t.Errorf("Validate: %v", err)
			}
			if !tc.valid && !errors.Is(err, drivers.ErrInvalid) {
				t.Errorf("Validate = %v, want ErrInvalid", err)
			}
			if tc.valid && c.Timeout != DefaultTimeout {
				t.Errorf("Timeout default = %v", c.Timeout)
			}
		})
	}
}
