package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The stock OpenStack clients, unchanged, with real tokens of the Keystone
// of scripts/keystone.sh: python-zaqarclient's keystone auth backend and
// the `openstack messaging` CLI find the test's server through the catalog.
// Without the Debian packages they skip, or fail when
// CISTERN_REQUIRE_ZAQARCLIENT or CISTERN_REQUIRE_BACKENDS is set.

// openstackCLI is Debian's openstack command (python3-openstackclient);
// python3-zaqarclient adds its messaging commands.
const openstackCLI = "/usr/bin/openstack"

// requireOpenStackTool skips, or fails on a machine meant to have it, when
// probe (a command line) does not run; a probe of one word only checks
// that the file exists (the CLI takes seconds to start).
func requireOpenStackTool(t *testing.T, pkg string, probe ...string) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts python")
	}
	var err error
	if len(probe) == 1 {
		_, err = os.Stat(probe[0])
	} else {
		err = exec.Command(probe[0], probe[1:]...).Run()
	}
	if err == nil {
		return
	}
	msg := fmt.Sprintf("%s is not installed (apt-get install -y %s): %v", pkg, pkg, err)
	if os.Getenv("CISTERN_REQUIRE_ZAQARCLIENT") != "" || os.Getenv("CISTERN_REQUIRE_BACKENDS") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// osEnv is the process environment without any OS_* variable, plus the
// OS_* set of user in project against k, asking the catalog in region.
func (k *realKeystone) osEnv(user, project, region string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OS_") {
			env = append(env, kv)
		}
	}
	return append(env,
		"OS_AUTH_URL="+k.url, "OS_IDENTITY_API_VERSION=3", "OS_AUTH_TYPE=password",
		"OS_USERNAME="+user, "OS_PASSWORD="+k.password, "OS_PROJECT_NAME="+project,
		"OS_USER_DOMAIN_NAME=Default", "OS_PROJECT_DOMAIN_NAME=Default",
		"OS_REGION_NAME="+region, "OS_INTERFACE=public")
}

// TestKeystoneRealZaqarClient runs testdata/zaqarclient_keystone_e2e.py:
// python-zaqarclient's keystone backend, with alice's credentials and no
// URL, finds this server in the catalog, creates a queue, posts, claims
// and deletes the claimed messages; bob neither lists nor reads the queue
// and is refused when he names alice's project.
func TestKeystoneRealZaqarClient(t *testing.T) {
	k := newRealKeystone(t)
	requireOpenStackTool(t, "python3-zaqarclient", pythonZaqarclient, "-c", "import zaqarclient.queues.client, keystoneauth1")
	e, _ := k.server(t, &offsetClock{})
	region := k.catalogRegion(t, e.url)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const qn = "zaqarclient-keystone"
	cmd := exec.CommandContext(ctx, pythonZaqarclient, "testdata/zaqarclient_keystone_e2e.py", e.url, qn, "bob", "beta")
	cmd.Env = k.osEnv("alice", "alpha", region)
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("zaqarclient keystone e2e: %v", err)
	}
	// the script deleted its queue; alice's project holds nothing more
	alice, _ := k.token(t, "alice")
	r := e.must(as(alice, req{method: "GET", path: "/v2/queues"}), http.StatusOK)
	if bytes.Contains(r.body, []byte(qn)) {
		t.Fatalf("queue left after the script deleted it: %s", r.body)
	}
}

// TestKeystoneRealOpenStackCLI runs the stock `openstack messaging`
// commands with alice's OS_* environment, as docs/api.md shows them: the
// CLI finds this server in the catalog, creates a queue, posts, lists and
// claims; bob's `queue list` does not show alice's queue.
func TestKeystoneRealOpenStackCLI(t *testing.T) {
	k := newRealKeystone(t)
	requireOpenStackTool(t, "python3-openstackclient", openstackCLI)
	requireOpenStackTool(t, "python3-zaqarclient", pythonZaqarclient, "-c", "import zaqarclient.queues.client")
	e, _ := k.server(t, &offsetClock{})
	region := k.catalogRegion(t, e.url)

	run := func(user, project string, args ...string) []byte {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, openstackCLI, args...)
		cmd.Env = append(k.osEnv(user, project, region), "OS_MESSAGE_CLIENT_ID="+clientA)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("openstack %s as %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), user, err, out, stderr.Bytes())
		}
		return out
	}
	const qn = "openstack-cli"
	run("alice", "alpha", "messaging", "queue", "create", qn, "-f", "json")
	run("alice", "alpha", "messaging", "message", "post", qn, `[{"ttl":300,"body":{"n":1}},{"ttl":300,"body":{"n":2}}]`)

	var queuesOut []struct{ Name string }
	out := run("alice", "alpha", "messaging", "queue", "list", "-f", "json")
	if err := json.Unmarshal(out, &queuesOut); err != nil || len(queuesOut) != 1 || queuesOut[0].Name != qn {
		t.Fatalf("alice's queue list: %s (%v)", out, err)
	}

	var claimed []struct {
		ID   string `json:"ID"`
		Body any    `json:"Body"`
		TTL  int    `json:"TTL"`
	}
	out = run("alice", "alpha", "messaging", "claim", "create", qn, "--ttl", "60", "--grace", "60", "--limit", "5", "-f", "json")
	if err := json.Unmarshal(out, &claimed); err != nil || len(claimed) != 2 {
		t.Fatalf("claim create: %s (%v)", out, err)
	}

	// What the CLI did is in alice's project on this server.
	alice, _ := k.token(t, "alice")
	r := e.must(as(alice, req{method: "GET", path: "/v2/queues/" + qn + "/stats"}), http.StatusOK)
	var stats struct {
		Messages struct{ Claimed, Total int } `json:"messages"`
	}
	if err := json.Unmarshal(r.body, &stats); err != nil || stats.Messages.Claimed != 2 || stats.Messages.Total != 2 {
		t.Fatalf("stats after the CLI's claim: %s (%v)", r.body, err)
	}

	out = run("bob", "beta", "messaging", "queue", "list", "-f", "json")
	if bytes.Contains(out, []byte(qn)) {
		t.Fatalf("bob lists alice's queue: %s", out)
	}
}
