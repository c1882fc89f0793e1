package main

import (
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cistern-mq/cistern/placement"
)

// TestMigrateErrors: `cistern migrate -queue q1` without -project failed on
// the server with "/q1 has no placement"; a failed run drew a full bar; no
// admin listener said only "connection refused".
func TestMigrateErrors(t *testing.T) {
	noEnv := func(string) string { return "" }
	run := func(args ...string) (string, int) {
		var out strings.Builder
		code := migrateCommand(args, noEnv, &out)
		return out.String(), code
	}

	// Nothing listens on a port just closed.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()
	if out, code := run("-admin", closed, "-queue", "q1"); code != 2 || !strings.Contains(out, "-queue q1 needs -project") {
		t.Errorf("no -project: exit %d: %s", code, out)
	}
	if out, code := run("-admin", closed, "-pool", "two"); code != 2 || !strings.Contains(out, "go with -queue") {
		t.Errorf("-pool without -queue: exit %d: %s", code, out)
	}
	if out, code := run("-admin", closed); code != 1 || !strings.Contains(out, "connection refused") || !strings.Contains(out, "is -admin-listen set on the server") {
		t.Errorf("no admin listener: exit %d: %s", code, out)
	}
	if out, code := run("-admin", closed, "-dry-run"); code != 1 || !strings.Contains(out, "is -admin-listen set on the server") {
		t.Errorf("dry run, no admin listener: exit %d: %s", code, out)
	}

	// A run that fails, against a real server: the queue does not exist.
	cfg := testConfig(t, "-data", filepath.Join(t.TempDir(), "one"))
	cfg.AdminListen = "127.0.0.1:0"
	d, _ := serve(t, cfg)
	out, code := run("-admin", "http://"+d.adminL.Addr().String(), "-every", "10ms", "-queue", "nosuch", "-project", "p")
	if code != 1 || !strings.Contains(out, "0/1 moved, 1 failed") || strings.Contains(out, "[#") {
		t.Errorf("failed run: exit %d: %q, want a bar of x and no #", code, out)
	}

	for _, c := range []struct {
		st   placement.MigrationStatus
		want string
	}{
		{placement.MigrationStatus{Total: 4, Done: 4}, "[##########]"},
		{placement.MigrationStatus{Total: 4, Done: 2, Failed: 2}, "[#####xxxxx]"},
		{placement.MigrationStatus{Total: 100, Done: 99, Failed: 1}, "[#########x]"},
		{placement.MigrationStatus{Total: 4, Done: 1}, "[##........]"},
	} {
		if got := progressBar(c.st, 10); !strings.HasPrefix(got, c.want) {
			t.Errorf("%+v: %q, want %s", c.st, got, c.want)
		}
	}
}
