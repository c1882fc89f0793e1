package server

import (
	"fmt"
	"strings"
	"testing"

	"github.com/cistern-mq/cistern/drivers/drivertest"
	"github.com/cistern-mq/cistern/drivers/faultstore"
	"github.com/cistern-mq/cistern/drivers/fsdriver"
	"github.com/cistern-mq/cistern/server/wire"
)

// faultEnv is a server over the fs driver wrapped in a fault injector.
func faultEnv(t *testing.T) (*env, *faultstore.Store) {
	t.Helper()
	fs, err := fsdriver.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f := faultstore.New(fs, faultstore.Options{Seed: 1})
	return newEnv(t, envOpts{store: f}), f
}

func postIDs(t *testing.T, e *env, q, body string) []string {
	t.Helper()
	var res wire.PostResult
	e.must(req{method: "POST", path: "/v2/queues/" + q + "/messages", body: body}, 201).decode(t, &res)
	ids := make([]string, len(res.Resources))
	for i, r := range res.Resources {
		ids[i] = r[strings.LastIndex(r, "/")+1:]
	}
	return ids
}

// want503 checks a Zaqar "try again" answer: 503, Retry-After, and a
// {"title","description"} body.
func want503(t *testing.T, r *resp, what string) {
	t.Helper()
	if r.status != 503 {
		t.Fatalf("%s: status %d, want 503; body %s", what, r.status, r.body)
	}
	if r.header.Get("Retry-After") == "" {
		t.Errorf("%s: no Retry-After", what)
	}
	var ae wire.Error
	r.decode(t, &ae)
	if ae.Title == "" || !strings.Contains(ae.Description, "try again") {
		t.Errorf("%s: error body %s", what, r.body)
	}
}

// TestFaultStoreFullAndDown: through HTTP on the fs driver, a full disk
// refuses writes with 503 + Retry-After while reads still work; a store
// that is down refuses everything the same way; once it is back, the same
// server serves again without a restart and nothing acknowledged is lost.
func TestFaultStoreFullAndDown(t *testing.T) {
	e, f := faultEnv(t)
	e.must(req{method: "PUT", path: "/v2/queues/f"}, 201)
	a := postIDs(t, e, "f", `{"messages": [{"body": "A", "ttl": 3600}]}`)[0]

	f.SetFull(true)
	for i := range 3 {
		want503(t, e.do(req{method: "POST", path: "/v2/queues/f/messages", body: fmt.Sprintf(`{"messages": [{"body": "full %d"}]}`, i)}), "post on a full disk")
	}
	want503(t, e.do(req{method: "POST", path: "/v2/queues/f/claims", body: `{"ttl": 60, "grace": 60}`}), "claim on a full disk")
	want503(t, e.do(req{method: "PUT", path: "/v2/queues/g"}), "create queue on a full disk")
	var m wire.Message
	e.must(req{method: "GET", path: "/v2/queues/f/messages/" + a}, 200).decode(t, &m)
	if string(m.Body) != `"A"` {
		t.Errorf("GET of A on a full disk reads %s", m.Body)
	}

	f.SetFull(false)
	f.SetDown(true)
	want503(t, e.do(req{method: "POST", path: "/v2/queues/f/messages", body: `{"messages": [{"body": "down"}]}`}), "post while down")
	want503(t, e.do(req{method: "GET", path: "/v2/queues/f/messages/" + a}), "get while down")
	want503(t, e.do(req{method: "GET", path: "/v2/queues/f/messages?echo=true"}), "list while down")

	f.SetDown(false)
	drivertest.Eventually(t, "a post to succeed once the store is back", func() bool {
		return e.do(req{method: "POST", path: "/v2/queues/f/messages", body: `{"messages": [{"body": "probe"}]}`}).status == 201
	})
	e.must(req{method: "GET", path: "/v2/queues/f/messages/" + a}, 200).decode(t, &m)
	if string(m.Body) != `"A"` {
		t.Errorf("GET of A after recovery reads %s", m.Body)
	}
	e.must(req{method: "PUT", path: "/v2/queues/g"}, 201)
}
