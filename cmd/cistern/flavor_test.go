package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// serve starts a daemon in this process on cfg (listeners on 127.0.0.1:0)
// and stops it when the test ends or stop is called.
func serve(t *testing.T, cfg Config) (d *daemon, stop func()) {
	t.Helper()
	return serveLog(t, cfg, &syncBuffer{})
}

// serveLog is serve with the daemon's log written to logs.
func serveLog(t *testing.T, cfg Config, logs io.Writer) (d *daemon, stop func()) {
	t.Helper()
	d, err := newDaemon(t.Context(), cfg, testLogger(logs))
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- d.main() }()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			d.exit()
			<-served
		}
	}
	t.Cleanup(stop)
	return d, stop
}

// TestStrandedFlavorIs400 is issue 14's second blocker end to end: a flavor
// set through the admin API on a pool the file defines, a restart, and a
// queue asking for the flavor: 400 saying the flavor has no pool, never a
// 503 "try again".
func TestStrandedFlavorIs400(t *testing.T) {
	dir := t.TempDir()
	yaml := fmt.Sprintf(`listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
pools:
  - {name: one, kind: fs, path: %s}
  - {name: two, kind: fs, path: %s}
`, filepath.Join(dir, "one"), filepath.Join(dir, "two"))
	path := filepath.Join(dir, "cistern.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := parseConfig([]string{"-config", path}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	d, stop := serve(t, cfg)
	admin := &client{base: "http://" + d.adminL.Addr().String(), id: "00000000-0000-4000-8000-000000000001", project: "admin", http: http.DefaultClient}
	if code, data, err := admin.do("PUT", "/v2/flavors/gold", map[string]any{"pool_list": []string{"two"}}); err != nil || code != http.StatusCreated {
		t.Fatalf("PUT flavor: %d %v %s", code, err, data)
	}
	stop()

	d, _ = serve(t, cfg)
	c := &client{base: "http://" + d.addr(), id: admin.id, project: "p", http: http.DefaultClient}
	code, data, err := c.do("PUT", "/v2/queues/x", map[string]any{"_flavor": "gold"})
	if err != nil {
		t.Fatal(err)
	}
	var e struct{ Title, Description string }
	_ = json.Unmarshal(data, &e)
	if code != http.StatusBadRequest || !strings.Contains(e.Description, "no pool") {
		t.Errorf("queue of the stranded flavor: %d %s, want 400 saying the flavor has no pool", code, data)
	}
	admin.base = "http://" + d.adminL.Addr().String()
	if code, data, _ := admin.do("GET", "/v2/flavors/gold", nil); code != http.StatusOK || strings.Contains(string(data), `"two"`) {
		t.Errorf("GET flavor gold after restart: %d %s, want it no longer listing pool two", code, data)
	}
}

// TestMigrateDryRun: after a pool is added, `cistern migrate -dry-run` lists
// the misplaced queues and where they would go, moves none (a second dry
// run says the same), and a real migration then moves exactly those.
func TestMigrateDryRun(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, "-data", filepath.Join(dir, "one"))
	cfg.AdminListen = "127.0.0.1:0"
	cfg.PoolURIAllow = []string{"file://" + dir}
	d, _ := serve(t, cfg)
	c := &client{base: "http://" + d.addr(), id: "00000000-0000-4000-8000-000000000001", project: "p", http: http.DefaultClient}
	for i := range 20 {
		if code, data, err := c.do("POST", fmt.Sprintf("/v2/queues/q%02d/messages", i), map[string]any{"messages": []map[string]any{{"body": i}}}); err != nil || code != http.StatusCreated {
			t.Fatalf("post: %d %v %s", code, err, data)
		}
	}
	adminURL := "http://" + d.adminL.Addr().String()
	admin := &client{base: adminURL, id: c.id, project: "admin", http: http.DefaultClient}
	if code, data, _ := admin.do("PUT", "/v2/pools/two", map[string]any{"uri": "file://" + filepath.Join(dir, "two"), "weight": 100}); code != http.StatusCreated {
		t.Fatalf("PUT pool: %d %s", code, data)
	}
	dryRun := func() (string, int) {
		var out strings.Builder
		code := migrateCommand([]string{"-admin", adminURL, "-dry-run"}, func(string) string { return "" }, &out)
		return out.String(), code
	}
	plan, code := dryRun()
	if code != 0 {
		t.Fatalf("dry run: exit %d: %s", code, plan)
	}
	lines := strings.Split(strings.TrimSpace(plan), "\n")
	moves := lines[:len(lines)-1]
	if len(moves) == 0 || len(moves) == 20 {
		t.Fatalf("dry run lists %d of 20 queues, want some (the new pool's share):\n%s", len(moves), plan)
	}
	for _, l := range moves {
		if !strings.HasPrefix(l, "p/q") || !strings.HasSuffix(l, ": default -> two") {
			t.Errorf("plan line %q, want p/<queue>: default -> two", l)
		}
	}
	if again, _ := dryRun(); again != plan {
		t.Errorf("a second dry run differs, so the first moved something:\n%s\nthen\n%s", plan, again)
	}
	var out strings.Builder
	if code := migrateCommand([]string{"-admin", adminURL, "-every", "10ms"}, func(string) string { return "" }, &out); code != 0 {
		t.Fatalf("migrate: exit %d: %s", code, out.String())
	}
	if want := fmt.Sprintf("%d/%d moved", len(moves), len(moves)); !strings.Contains(out.String(), want) {
		t.Errorf("migrate: %q, want %q as the dry run said", out.String(), want)
	}
	if after, _ := dryRun(); !strings.HasPrefix(after, "0 queues would move") {
		t.Errorf("dry run after the migration: %q, want nothing left", after)
	}
}
