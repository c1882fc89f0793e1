package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestAddPoolAndMigrate runs the binary with two fs pools and an admin
// listener, fills queues, adds a third pool through the admin API, moves
// the misplaced queues with `cistern migrate`, and checks that every
// message is still there, through a restart too.
func TestAddPoolAndMigrate(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	addr, admin := freePort(t), freePort(t)
	cfg := fmt.Sprintf(`admin_listen: %s
pool_uri_allow: [file://%s]
pools:
  - name: one
    kind: fs
    path: %s
  - name: two
    kind: fs
    path: %s
`, admin, dir, filepath.Join(dir, "one"), filepath.Join(dir, "two"))
	cfgPath := filepath.Join(dir, "cistern.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p := start(t, bin, addr, "-config", cfgPath)
	c := &client{base: "http://" + addr, id: "00000000-0000-4000-8000-000000000001", project: "mig", http: http.DefaultClient}
	const queues = 30
	for i := range queues {
		code, data, err := c.do("POST", fmt.Sprintf("/v2/queues/q%02d/messages", i),
			map[string]any{"messages": []map[string]any{{"body": i, "ttl": 3600}, {"body": i + 100, "ttl": 3600}}})
		if err != nil || code != http.StatusCreated {
			t.Fatalf("post: %d %v %s", code, err, data)
		}
	}
	a := &client{base: "http://" + admin, id: c.id, project: "admin", http: http.DefaultClient}
	if code, data, _ := a.do("PUT", "/v2/pools/three", map[string]any{"uri": "file://" + filepath.Join(dir, "three"), "weight": 100}); code != http.StatusCreated {
		t.Fatalf("PUT pool: %d %s", code, data)
	}
	code, data, _ := a.do("GET", "/v2/pools?detailed=true", nil)
	if code != http.StatusOK || !strings.Contains(string(data), `"three"`) {
		t.Fatalf("GET pools: %d %s", code, data)
	}
	// The public listener does not serve the admin API.
	if code, _, _ := c.do("GET", "/v2/pools", nil); code != http.StatusNotFound {
		t.Errorf("public GET /v2/pools: %d, want 404", code)
	}

	var out bytes.Buffer
	cmd := exec.Command(bin, "migrate", "-admin", "http://"+admin, "-every", "20ms")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("cistern migrate: %v\n%s", err, out.String())
	}
	t.Logf("cistern migrate: %s", lastLine(out.String()))
	if !strings.Contains(out.String(), "0 failed") {
		t.Fatalf("migrate output: %s", out.String())
	}
	if code, data, _ := a.do("DELETE", "/v2/pools/three", nil); code != http.StatusConflict {
		t.Errorf("deleting a pool that holds queues: %d %s, want 409", code, data)
	}
	check := func(when string) {
		for i := range queues {
			code, data, err := c.do("GET", fmt.Sprintf("/v2/queues/q%02d/messages?echo=true", i), nil)
			if err != nil || code != http.StatusOK {
				t.Fatalf("%s: list q%02d: %d %v", when, i, code, err)
			}
			var res struct{ Messages []struct{ Body int } }
			if err := json.Unmarshal(data, &res); err != nil || len(res.Messages) != 2 || res.Messages[0].Body != i || res.Messages[1].Body != i+100 {
				t.Fatalf("%s: q%02d holds %s", when, i, data)
			}
		}
	}
	check("after migration")
	entries, _ := os.ReadDir(filepath.Join(dir, "three"))
	if len(entries) < 2 { // the control container and at least one queue
		t.Errorf("no queue moved to the new pool: %v", entries)
	}
	p.kill()
	start(t, bin, addr, "-config", cfgPath)
	check("after restart")
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexAny(s, "\r\n"); i >= 0 {
		return s[i+1:]
	}
	return s
}
