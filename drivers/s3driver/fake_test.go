package s3driver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/cistern-mq/cistern/drivers"
)

// fakeS3 is just enough of an S3 server (path-style, no auth, no listing)
// to count the requests each verb costs and to play a store's answer to
// If-None-Match. The real behaviour is tested against real stores in
// s3_test.go.
type fakeS3 struct {
	mu       sync.Mutex
	objects  map[string][]byte
	requests []string // "METHOD key"
	// ifNoneMatch: "atomic" (412 on an existing key), "ignore", or
	// "refuse" (501, as Swift's s3api 2.30).
	ifNoneMatch string
	// fail, when set, answers a request instead of the store.
	fail func(r *http.Request) (status int, code string)
}

func newFake(t *testing.T, ifNoneMatch string) (*fakeS3, *Store) {
	t.Helper()
	f := &fakeS3{objects: map[string][]byte{}, ifNoneMatch: ifNoneMatch}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	s, err := New(context.Background(), Config{
		Endpoint: srv.URL, Bucket: "b", AccessKey: "a", SecretKey: "s", PathStyle: true, KeyPrefix: "p/",
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return f, s
}

func (f *fakeS3) reset() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.requests
	f.requests = nil
	return r
}

func (f *fakeS3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	key, _ := strings.CutPrefix(r.URL.Path, "/b")
	key = strings.TrimPrefix(key, "/")
	f.requests = append(f.requests, r.Method+" "+key)
	answer := func(status int, code string) {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(status)
		if r.Method != http.MethodHead {
			fmt.Fprintf(w, "<Error><Code>%s</Code><Message>fake</Message></Error>", code)
		}
	}
	if f.fail != nil {
		if status, code := f.fail(r); status != 0 {
			answer(status, code)
			return
		}
	}
	data, exists := f.objects[key]
	switch {
	case key == "": // HeadBucket
		w.WriteHeader(http.StatusOK)
	case r.Method == http.MethodPut:
		if r.Header.Get("If-None-Match") != "" {
			switch f.ifNoneMatch {
			case "refuse":
				answer(http.StatusNotImplemented, "NotImplemented")
				return
			case "atomic":
				if exists {
					answer(http.StatusPreconditionFailed, "PreconditionFailed")
					return
				}
			}
		}
		b, _ := io.ReadAll(r.Body)
		f.objects[key] = b
		w.WriteHeader(http.StatusOK)
	case r.Method == http.MethodDelete:
		delete(f.objects, key)
		w.WriteHeader(http.StatusNoContent)
	case !exists:
		answer(http.StatusNotFound, "NoSuchKey")
	default: // GET, HEAD
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(data)
		}
	}
}

func TestProbe(t *testing.T) {
	for _, tc := range []struct {
		mode string
		want drivers.CreateOnly
		warn string
	}{
		{"atomic", drivers.CreateOnlyAtomic, ""},
		{"ignore", drivers.CreateOnlyNone, "ignores If-None-Match"},
		{"refuse", drivers.CreateOnlyNone, "refuses (501 NotImplemented"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			f, s := newFake(t, tc.mode)
			if got := s.Capabilities().CreateOnly; got != tc.want {
				t.Errorf("probe: %s, want %s", got, tc.want)
			}
			warnings := strings.Join(s.Warnings(), "\n")
			if tc.warn != "" && !strings.Contains(warnings, tc.warn) {
				t.Errorf("warnings %q do not say %q", warnings, tc.warn)
			}
			if tc.warn == "" && strings.Contains(warnings, "create-only") {
				t.Errorf("warnings %q for a store with create-only puts", warnings)
			}
			if len(f.objects) != 0 {
				t.Errorf("probe left objects behind: %v", f.objects)
			}
			for _, r := range f.reset() {
				if k := strings.TrimPrefix(r[strings.IndexByte(r, ' ')+1:], "p/"); k != "" && !strings.HasPrefix(k, probeDir) {
					t.Errorf("probe request outside %s: %s", probeDir, r)
				}
			}
		})
	}
}

// TestRequestCost pins how many requests each verb costs: a put is one
// request (no HEAD of the container first), and a refused create-only put
// is none.
func TestRequestCost(t *testing.T) {
	ctx := context.Background()
	f, s := newFake(t, "refuse")
	f.reset()
	cases := []struct {
		name string
		do   func() error
		want []string
	}{
		{"create container", func() error { return s.CreateContainer(ctx, "q") }, []string{"PUT p/.containers/q"}},
		{"put", func() error { return s.Put(ctx, "q", "log/1", []byte("x"), nil) }, []string{"PUT p/q/log/1"}},
		{"put into a missing container", func() error { return s.Put(ctx, "nope", "k", []byte("x"), nil) }, []string{"PUT p/nope/k"}},
		{"get", func() error { _, err := s.Get(ctx, "q", "log/1", nil); return err }, []string{"GET p/q/log/1"}},
		{"head", func() error { _, err := s.Head(ctx, "q", "log/1"); return err }, []string{"HEAD p/q/log/1"}},
		{"delete", func() error { return s.Delete(ctx, "q", "log/1") }, []string{"DELETE p/q/log/1"}},
	}
	for _, tc := range cases {
		if err := tc.do(); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		if got := f.reset(); strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%s: requests %q, want %q", tc.name, got, tc.want)
		}
	}
	err := s.Put(ctx, "q", "log/2", []byte("x"), &drivers.PutOptions{CreateOnly: true})
	if !errors.Is(err, drivers.ErrNotSupported) {
		t.Errorf("create-only put on a store without it: %v, want ErrNotSupported", err)
	}
	if got := f.reset(); len(got) != 0 {
		t.Errorf("a refused create-only put sent %q", got)
	}
	// Invalid names cost nothing either.
	_ = s.Put(ctx, "../q", "k", nil, nil)
	_ = s.Put(ctx, "q", strings.Repeat("k", maxS3Key), nil, nil)
	if got := f.reset(); len(got) != 0 {
		t.Errorf("invalid names sent %q", got)
	}
}

func TestErrorAnswers(t *testing.T) {
	ctx := context.Background()
	f, s := newFake(t, "atomic")
	cases := []struct {
		status int
		code   string
		kind   error
	}{
		{http.StatusConflict, "ConditionalRequestConflict", drivers.ErrPreconditionFailed},
		{http.StatusForbidden, "AccessDenied", drivers.ErrUnavailable},
		{http.StatusBadRequest, "InvalidArgument", drivers.ErrInvalid},
		{http.StatusNotFound, "NoSuchBucket", drivers.ErrUnavailable},
	}
	for _, tc := range cases {
		f.mu.Lock()
		f.fail = func(*http.Request) (int, string) { return tc.status, tc.code }
		f.mu.Unlock()
		err := s.Put(ctx, "q", "k", []byte("x"), &drivers.PutOptions{CreateOnly: true})
		if drivers.KindOf(err) != tc.kind {
			t.Errorf("%d %s: %v, want %v", tc.status, tc.code, err, tc.kind)
		}
	}
	f.mu.Lock()
	f.fail = func(r *http.Request) (int, string) {
		if r.Method == http.MethodGet && r.Header.Get("Range") != "" {
			return http.StatusRequestedRangeNotSatisfiable, "InvalidRange"
		}
		return 0, ""
	}
	f.mu.Unlock()
	if err := s.Put(ctx, "q", "empty", nil, nil); err != nil {
		t.Fatal(err)
	}
	// S3 refuses every range of an empty object; the contract reads
	// nothing at offset 0 and refuses any other offset.
	got, err := s.Get(ctx, "q", "empty", &drivers.GetOptions{Range: &drivers.Range{Offset: 0, Length: 1}})
	if err != nil || len(got) != 0 {
		t.Errorf("range at 0 of an empty object: %q, %v; want empty, nil", got, err)
	}
	_, err = s.Get(ctx, "q", "empty", &drivers.GetOptions{Range: &drivers.Range{Offset: 1, Length: 1}})
	if !errors.Is(err, drivers.ErrInvalid) {
		t.Errorf("range at 1 of an empty object: %v, want ErrInvalid", err)
	}
}

func TestNewFailsLoudly(t *testing.T) {
	f := &fakeS3{objects: map[string][]byte{}, fail: func(*http.Request) (int, string) {
		return http.StatusForbidden, "SignatureDoesNotMatch"
	}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	_, err := New(context.Background(), Config{Endpoint: srv.URL, Bucket: "b", AccessKey: "a", SecretKey: "wrong", PathStyle: true})
	if !errors.Is(err, drivers.ErrUnavailable) || !strings.Contains(err.Error(), "credentials") {
		t.Errorf("New with a refused signature: %v, want ErrUnavailable naming the credentials", err)
	}
}
