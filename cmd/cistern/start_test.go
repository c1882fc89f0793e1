package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cistern-mq/cistern/drivers"
	"github.com/cistern-mq/cistern/drivers/drivertest"
)

// syncBuffer is a log sink tests read while the daemon writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func testLogger(w io.Writer) zerolog.Logger { return zerolog.New(w).With().Timestamp().Logger() }

type startResult struct {
	d   *daemon
	err error
}

// startAsync runs startDaemon in the background; the daemon it starts is
// closed when the test ends.
func startAsync(t *testing.T, cfg Config, log zerolog.Logger) <-chan startResult {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan startResult, 1)
	done := make(chan struct{})
	var started *daemon
	go func() {
		defer close(done)
		d, err := startDaemon(ctx, cfg, log, 10*time.Millisecond)
		started = d
		out <- startResult{d, err}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		if started != nil {
			started.close()
		}
	})
	return out
}

func testConfig(t *testing.T, args ...string) Config {
	t.Helper()
	cfg, err := parseConfig(append([]string{"-listen", "127.0.0.1:0"}, args...), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cfg.StartTimeout = 2 * time.Minute
	return cfg
}

// TestStartWaitsForFSPool starts on a data folder that cannot be created
// yet (its parent is still a plain file, as a mount point that is not
// mounted can be) and makes it available later: start-up waits, says which
// pool it waits for, and serves once the folder is there.
func TestStartWaitsForFSPool(t *testing.T) {
	dir := t.TempDir()
	mnt := filepath.Join(dir, "mnt")
	if err := os.WriteFile(mnt, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, "-data", filepath.Join(mnt, "data"))
	var logs syncBuffer
	res := startAsync(t, cfg, testLogger(&logs))
	var early *startResult
	drivertest.Eventually(t, `"waiting for pool default" in the log`, func() bool {
		select {
		case r := <-res:
			early = &r
			return true
		default:
		}
		return strings.Contains(logs.String(), "waiting for pool default")
	})
	if early != nil {
		t.Fatalf("start-up ended before the folder was there: %v\nlog:\n%s", early.err, logs.String())
	}
	if err := os.Remove(mnt); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	r := <-res
	if r.err != nil {
		t.Fatalf("start-up failed once the folder was there: %v", r.err)
	}
}

// storeLater is a loopback address where nothing listens until up is
// called; then it proxies to target. It stands for a store whose host is
// not up yet.
type storeLater struct {
	addr   string
	target *url.URL
}

func newStoreLater(t *testing.T, target string) *storeLater {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	return &storeLater{addr: freePort(t), target: u}
}

func (s *storeLater) up(t *testing.T) {
	t.Helper()
	l, err := net.Listen("tcp", s.addr)
	if err != nil {
		t.Fatalf("the store's address was taken meanwhile: %v", err)
	}
	p := httputil.NewSingleHostReverseProxy(s.target)
	rewrite := p.Director
	p.Director = func(r *http.Request) {
		rewrite(r)
		r.Host = s.target.Host
	}
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
}

func swiftEnv(t *testing.T) (authURL, user, key string) {
	t.Helper()
	authURL, user, key = os.Getenv("CISTERN_SWIFT_AUTH_URL"), os.Getenv("CISTERN_SWIFT_USER"), os.Getenv("CISTERN_SWIFT_KEY")
	if authURL == "" {
		if os.Getenv("CISTERN_REQUIRE_BACKENDS") == "1" {
			t.Fatal("CISTERN_SWIFT_AUTH_URL is not set: start Swift with scripts/swift-aio.sh")
		}
		t.Skip("CISTERN_SWIFT_AUTH_URL is not set: start Swift with scripts/swift-aio.sh")
	}
	return authURL, user, key
}

// TestStartWaitsForSwift starts Cistern before its Swift answers: the
// Swift's address refuses connections until the test brings it up.
func TestStartWaitsForSwift(t *testing.T) {
	authURL, user, key := swiftEnv(t)
	u, err := url.Parse(authURL)
	if err != nil {
		t.Fatal(err)
	}
	later := newStoreLater(t, u.Scheme+"://"+u.Host)
	u.Host = later.addr
	cfg := testConfig(t, "-driver", "swift", "-swift-auth-url", u.String(), "-swift-user", user, "-swift-key", key)
	var logs syncBuffer
	res := startAsync(t, cfg, testLogger(&logs))
	drivertest.Eventually(t, `"waiting for pool default" in the log`, func() bool {
		return strings.Contains(logs.String(), "waiting for pool default")
	})
	select {
	case r := <-res:
		t.Fatalf("start-up ended before Swift was up: %v", r.err)
	default:
	}
	// The storage URL Swift hands out names its real address, so only
	// authentication goes through the late listener; that is the first
	// request start-up makes.
	later.up(t)
	r := <-res
	if r.err != nil {
		t.Fatalf("start-up failed once Swift was up: %v\nlog:\n%s", r.err, logs.String())
	}
}

// TestStartWrongKeyIsFatal: a store that refuses the credentials ends
// start-up at once, without waiting start_timeout, and says so.
func TestStartWrongKeyIsFatal(t *testing.T) {
	var auths atomic.Int64
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auths.Add(1)
		http.Error(w, "401 Unauthorized", http.StatusUnauthorized) // tempauth's answer to a wrong key
	})}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	cfg := testConfig(t, "-driver", "swift", "-swift-auth-url", "http://"+l.Addr().String()+"/auth/v1.0",
		"-swift-user", "test:tester", "-swift-key", "wrong")
	var logs syncBuffer
	r := <-startAsync(t, cfg, testLogger(&logs))
	if r.err == nil {
		t.Fatal("start-up succeeded with a wrong key")
	}
	if !errors.Is(r.err, drivers.ErrAuth) || !strings.Contains(r.err.Error(), "not retried") {
		t.Errorf("error %v, want one marked drivers.ErrAuth that says it is not retried", r.err)
	}
	if strings.Contains(logs.String(), "waiting for") {
		t.Errorf("start-up waited for a store that refused the key:\n%s", logs.String())
	}
	if n := auths.Load(); n > 2 {
		t.Errorf("%d authentication requests, want one attempt (ncw/swift may retry once)", n)
	}
}

// TestStartWrongKeyIsFatalSwift is the same against the real Swift.
func TestStartWrongKeyIsFatalSwift(t *testing.T) {
	authURL, user, _ := swiftEnv(t)
	cfg := testConfig(t, "-driver", "swift", "-swift-auth-url", authURL, "-swift-user", user, "-swift-key", "wrong-key")
	var logs syncBuffer
	r := <-startAsync(t, cfg, testLogger(&logs))
	if !errors.Is(r.err, drivers.ErrAuth) || strings.Contains(logs.String(), "waiting for") {
		t.Errorf("start-up with a wrong key: %v, want a fatal drivers.ErrAuth without waiting; log:\n%s", r.err, logs.String())
	}
}
