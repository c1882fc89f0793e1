package server

import (
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// pythonZaqarclient is Debian's python with its modules; a pyenv python on
// PATH lacks them.
const pythonZaqarclient = "/usr/bin/python3"

// TestZaqarClient runs testdata/zaqarclient_e2e.py (python-zaqarclient, the
// OpenStack client) against a live server. It skips when the Debian package
// python3-zaqarclient is not installed; CISTERN_REQUIRE_ZAQARCLIENT=1 makes that a failure, for
// machines that are meant to have it.
func TestZaqarClient(t *testing.T) {
	if testing.Short() {
		t.Skip("starts python")
	}
	if _, err := os.Stat(pythonZaqarclient); err != nil {
		t.Skip("no " + pythonZaqarclient)
	}
	if err := exec.Command(pythonZaqarclient, "-c", "import zaqarclient.queues.client").Run(); err != nil {
		if os.Getenv("CISTERN_REQUIRE_ZAQARCLIENT") != "" {
			t.Fatalf("python3-zaqarclient is not installed: %v", err)
		}
		t.Skip("python3-zaqarclient is not installed (apt-get install -y python3-zaqarclient)")
	}
	e := newEnv(t, envOpts{real: true})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, pythonZaqarclient, "testdata/zaqarclient_e2e.py", e.url, "zaqarclient-e2e")
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("zaqarclient e2e: %v", err)
	}
}

// TestZaqarClientWebsocket runs testdata/zaqarclient_ws_e2e.py
// (python-zaqarclient's websocket transport, which needs python3-websocket)
// against the websocket transport. It skips when either is missing unless
// CISTERN_REQUIRE_ZAQARCLIENT is set.
func TestZaqarClientWebsocket(t *testing.T) {
	if testing.Short() {
		t.Skip("starts python")
	}
	if _, err := os.Stat(pythonZaqarclient); err != nil {
		t.Skip("no " + pythonZaqarclient)
	}
	if err := exec.Command(pythonZaqarclient, "-c", "import zaqarclient.transport.ws, websocket").Run(); err != nil {
		if os.Getenv("CISTERN_REQUIRE_ZAQARCLIENT") != "" {
			t.Fatalf("python3-zaqarclient or python3-websocket is not installed: %v", err)
		}
		t.Skip("python3-zaqarclient or python3-websocket is not installed (apt-get install -y python3-zaqarclient python3-websocket)")
	}
	e := newEnv(t, envOpts{real: true, single: true})
	hs := httptest.NewServer(e.srv.WebsocketHandler())
	t.Cleanup(hs.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, pythonZaqarclient, "testdata/zaqarclient_ws_e2e.py", "ws"+strings.TrimPrefix(hs.URL, "http"), "zaqarclient-ws")
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("zaqarclient websocket e2e: %v", err)
	}
}
