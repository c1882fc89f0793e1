package main

import (
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSlowBodyIsCutOff: a client that sends its headers, one byte of body
// and then nothing is disconnected after read_timeout, instead of holding
// its connection for ever.
func TestSlowBodyIsCutOff(t *testing.T) {
	cfg := testConfig(t, "-data", t.TempDir())
	cfg.HTTP.ReadTimeout = 200 * time.Millisecond
	d, _ := serve(t, cfg)
	c, err := net.Dial("tcp", d.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = io.WriteString(c, "POST /v2/queues/q/messages HTTP/1.1\r\nHost: cistern\r\n"+
		"Client-ID: 00000000-0000-4000-8000-000000000001\r\nX-Project-ID: p\r\n"+
		"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
	if err != nil {
		t.Fatal(err)
	}
	// The deadline only bounds the test; the server must end it first.
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err = io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server kept a connection whose body stalled: %v", err)
	}
}

// TestConnectionCap: with max_connections 2 and two connections held, a
// third client is not served until one of them goes.
func TestConnectionCap(t *testing.T) {
	cfg := testConfig(t, "-data", t.TempDir())
	cfg.HTTP.MaxConnections = 2
	cfg.HTTP.ReadHeaderTimeout = time.Minute
	d, _ := serve(t, cfg)
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", d.addr())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		defer c.Close()
	}
	ping := func(timeout time.Duration) error {
		cl := &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true}}
		req, _ := http.NewRequest("GET", "http://"+d.addr()+"/v2/ping", nil)
		req.Header.Set("Client-ID", "00000000-0000-4000-8000-000000000001")
		req.Header.Set("X-Project-ID", "p")
		resp, err := cl.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := ping(300 * time.Millisecond); err == nil {
		t.Fatal("a third connection was served while two were held with max_connections 2")
	}
	held[0].Close()
	if err := ping(30 * time.Second); err != nil {
		t.Fatalf("no connection served after one of the two held went: %v", err)
	}
}

// TestAdminListener: pprof is off unless asked for, and a pool URI outside
// the allow-list is refused with 400 and creates nothing.
func TestAdminListener(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, "-data", filepath.Join(dir, "data"))
	cfg.AdminListen = "127.0.0.1:0"
	var logs syncBuffer
	d, stop := serveLog(t, cfg, &logs)
	admin := &client{base: "http://" + d.adminL.Addr().String(), id: "00000000-0000-4000-8000-000000000001", project: "admin", http: http.DefaultClient}
	if code, _, err := admin.do("GET", "/debug/pprof/", nil); err != nil || code != http.StatusNotFound {
		t.Errorf("GET /debug/pprof/ without admin_pprof: %d %v, want 404", code, err)
	}
	elsewhere := filepath.Join(dir, "elsewhere")
	code, data, err := admin.do("PUT", "/v2/pools/evil", map[string]any{"uri": "file://" + elsewhere, "weight": 10})
	if err != nil || code != http.StatusBadRequest || !strings.Contains(string(data), "pool_uri_allow") {
		t.Errorf("PUT pool outside the allow-list: %d %v %s, want 400 naming pool_uri_allow", code, err, data)
	}
	if _, err := os.Stat(elsewhere); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused pool's folder was created: %v", err)
	}
	code, data, _ = admin.do("PUT", "/v2/pools/evil", map[string]any{"uri": "swift+http://169.254.169.254/auth/v1.0", "weight": 10, "options": map[string]string{"user": "a:b", "key": "k"}})
	if code != http.StatusBadRequest || !strings.Contains(string(data), "pool_uri_allow") {
		t.Errorf("PUT pool at another host: %d %s, want 400 naming pool_uri_allow", code, data)
	}
	if code, data, _ := admin.do("PUT", "/v2/pools/fast", map[string]any{"uri": "file://" + filepath.Join(dir, "data", "fast"), "weight": 10}); code != http.StatusCreated {
		t.Errorf("PUT pool under the data folder: %d %s, want 201", code, data)
	}
	if !strings.Contains(logs.String(), "the admin listener has NO AUTHENTICATION") {
		t.Errorf("start-up log does not say the admin listener has no authentication:\n%s", logs.String())
	}
	stop()

	cfg.AdminPprof = true
	d, _ = serve(t, cfg)
	admin.base = "http://" + d.adminL.Addr().String()
	if code, _, err := admin.do("GET", "/debug/pprof/", nil); err != nil || code != http.StatusOK {
		t.Errorf("GET /debug/pprof/ with admin_pprof: %d %v, want 200", code, err)
	}
}

// addrListener reports another address than the one it listens on, so
// that the start-up warnings can be checked without listening beyond
// loopback.
type addrListener struct {
	net.Listener
	addr net.Addr
}

func (l addrListener) Addr() net.Addr { return l.addr }

func TestNoAuthWarning(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, tc := range []struct {
		ip   string
		warn bool
	}{{"127.0.0.1", false}, {"::1", false}, {"0.0.0.0", true}, {"::", true}, {"192.0.2.7", true}} {
		var logs syncBuffer
		d := &daemon{cfg: defaultConfig(), log: testLogger(&logs),
			ln: addrListener{l, &net.TCPAddr{IP: net.ParseIP(tc.ip), Port: 8888}}}
		d.warnExposure()
		if got := strings.Contains(logs.String(), "WITHOUT AUTHENTICATION"); got != tc.warn {
			t.Errorf("listening on %s: warned %v, want %v (log %q)", tc.ip, got, tc.warn, logs.String())
		}
	}
}

func TestSignedURLSecretFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := parseConfig([]string{"-signed-url-secret-file", path}, env(nil))
	if err != nil || cfg.SignedURLSecret != "s3cret" {
		t.Errorf("-signed-url-secret-file: %q, %v; want the file's line", cfg.SignedURLSecret, err)
	}
	cfg, err = parseConfig(nil, env(map[string]string{"CISTERN_SIGNED_URL_SECRET_FILE": path}))
	if err != nil || cfg.SignedURLSecret != "s3cret" {
		t.Errorf("CISTERN_SIGNED_URL_SECRET_FILE: %q, %v; want the file's line", cfg.SignedURLSecret, err)
	}
	cfg, err = parseConfig([]string{"-signed-url-secret", "x"}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	(&daemon{cfg: cfg, log: testLogger(&logs), ln: l}).warnExposure()
	if !strings.Contains(logs.String(), "sees in ps") {
		t.Errorf("no warning for a secret on the command line: %q", logs.String())
	}
	if _, err := parseConfig([]string{"-signed-url-secret-file", path, "-signed-url-secret", "x"}, env(nil)); err == nil {
		t.Error("a secret and a secret file both given: accepted")
	}
	empty := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	if _, err := parseConfig([]string{"-signed-url-secret-file", empty}, env(nil)); err == nil {
		t.Error("an empty secret file: accepted")
	}
}

// TestListenAddressBusy: a busy listen address ends start-up with an
// error naming it (no panic), as docs/configuration.md says.
func TestListenAddressBusy(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cfg := testConfig(t, "-data", t.TempDir())
	cfg.Listen = l.Addr().String()
	r := <-startAsync(t, cfg, testLogger(io.Discard))
	if r.err == nil || !strings.Contains(r.err.Error(), "address already in use") {
		t.Errorf("start on a busy address: %v, want an error saying it is in use", r.err)
	}
}

// TestSIGHUPIgnored: SIGHUP (a closed terminal, a reload by habit) does not
// kill the server; a SIGTERM after it still shuts it down gracefully.
func TestSIGHUPIgnored(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server")
	}
	bin := buildBinary(t)
	p := start(t, bin, freePort(t), "-data", t.TempDir())
	// Linux delivers pending standard signals lowest number first: SIGHUP
	// (1) is handled before SIGTERM (15).
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := p.cmd.Wait()
	if err != nil || !strings.Contains(p.log.String(), "SIGHUP ignored") {
		t.Errorf("after SIGHUP then SIGTERM: %v (want a clean exit); log:\n%s", err, p.log.String())
	}
}

func TestUnknownLogLevel(t *testing.T) {
	if _, err := parseConfig([]string{"-log-level", "verbose"}, env(nil)); err == nil || !strings.Contains(err.Error(), "verbose") {
		t.Errorf("-log-level verbose: %v, want an error naming it", err)
	}
	if _, err := parseConfig([]string{"-log-level", "warn"}, env(nil)); err != nil {
		t.Errorf("-log-level warn: %v", err)
	}
}

// TestLogNoColourOffTerminal: console logs written to a file or pipe carry
// no ANSI escape codes.
func TestLogNoColourOffTerminal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	l := newLogger(defaultConfig(), f)
	l.Warn().Str("pool", "p").Msg("hello")
	data, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "\x1b[") || !strings.Contains(string(data), "hello") {
		t.Errorf("console log in a file: %q, want the line without escape codes", data)
	}
}
