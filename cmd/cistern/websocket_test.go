package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestWebsocketListen: -websocket-listen serves Zaqar's websocket
// transport on a listener of its own, and shutting down closes its
// sockets; CISTERN_WEBSOCKET_LISTEN and websocket_listen set it too, and
// it is off by default.
func TestWebsocketListen(t *testing.T) {
	cfg := testConfig(t, "-data", t.TempDir(), "-websocket-listen", "127.0.0.1:0")
	d, stop := serve(t, cfg)
	conn, _, err := websocket.DefaultDialer.Dial("ws://"+d.wsL.Addr().String()+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	frame := map[string]any{"action": "queue_create",
		"headers": map[string]string{"Client-ID": "3381af92-2b9e-11e3-b191-71861300734c", "X-Project-ID": "proj"},
		"body":    map[string]string{"queue_name": "sock"}}
	if err := conn.WriteJSON(frame); err != nil {
		t.Fatal(err)
	}
	var ans struct {
		Headers struct {
			Status int `json:"status"`
		} `json:"headers"`
	}
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	if err := conn.ReadJSON(&ans); err != nil || ans.Headers.Status != 201 {
		t.Fatalf("queue_create over the socket: %+v %v", ans, err)
	}
	stop()
	if _, _, err := conn.ReadMessage(); err == nil {
		t.Fatal("the socket is still open after shutdown")
	}

	if cfg := testConfig(t, "-data", t.TempDir()); cfg.WebsocketListen != "" {
		t.Errorf("websocket_listen defaults to %q, want off", cfg.WebsocketListen)
	}
	env := map[string]string{"CISTERN_WEBSOCKET_LISTEN": "127.0.0.1:9000"}
	if cfg, err := parseConfig([]string{"-data", t.TempDir()}, func(k string) string { return env[k] }); err != nil || cfg.WebsocketListen != "127.0.0.1:9000" {
		t.Errorf("CISTERN_WEBSOCKET_LISTEN: %q %v", cfg.WebsocketListen, err)
	}
	file := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(file, []byte("websocket_listen: 127.0.0.1:9001\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if cfg, err := parseConfig([]string{"-config", file, "-data", t.TempDir()}, func(string) string { return "" }); err != nil || cfg.WebsocketListen != "127.0.0.1:9001" {
		t.Errorf("websocket_listen in the file: %q %v", cfg.WebsocketListen, err)
	}
}

// TestWebsocketNoAuthWarning: a websocket listener beyond loopback without
// authentication is warned about, as the public one is.
func TestWebsocketNoAuthWarning(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, tc := range []struct {
		ip   string
		warn bool
	}{{"127.0.0.1", false}, {"0.0.0.0", true}} {
		var logs syncBuffer
		d := &daemon{cfg: defaultConfig(), log: testLogger(&logs), ln: l,
			wsL: addrListener{l, &net.TCPAddr{IP: net.ParseIP(tc.ip), Port: 9000}}}
		d.warnExposure()
		if got := strings.Contains(logs.String(), "websocket transport WITHOUT AUTHENTICATION"); got != tc.warn {
			t.Errorf("websocket on %s: warned %v, want %v (log %q)", tc.ip, got, tc.warn, logs.String())
		}
	}
}
