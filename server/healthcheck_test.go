package server

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"testing"

	"github.com/cistern-mq/cistern/drivers"
	"github.com/cistern-mq/cistern/drivers/drivertest"
	"github.com/cistern-mq/cistern/drivers/memdriver"
	"github.com/cistern-mq/cistern/index"
	"github.com/cistern-mq/cistern/server/wire"
)

// failingPost is an engine whose posts fail, as with a store that refuses
// writes after the queue was made.
type failingPost struct{ *index.Engine }

func (failingPost) Post(context.Context, index.QueueRef, string, []index.NewMessage) ([]string, error) {
	return nil, drivers.ErrUnavailable
}

func adminHealth(t *testing.T, srv *Server) wire.Health {
	t.Helper()
	a := httptest.NewServer(srv.AdminHandler())
	t.Cleanup(a.Close)
	code, body := call(t, "GET", a.URL+"/v2/health", "")
	var h wire.Health
	if code != 200 || json.Unmarshal([]byte(body), &h) != nil {
		t.Fatalf("admin health: %d %s", code, body)
	}
	return h
}

// TestHealthOperationStatus: the admin health document carries Zaqar's
// operation_status: every step of a run on a scratch queue, timed, with a
// reference for the steps that failed; the scratch queue is gone after.
func TestHealthOperationStatus(t *testing.T) {
	e := newEnv(t, envOpts{real: true})
	h := adminHealth(t, e.srv)
	for _, op := range []string{"create_queue", "post_messages", "claim_messages", "list_messages", "delete_messages", "delete_claim", "delete_queue"} {
		st, ok := h.OperationStatus[op]
		if !ok || !st.Succeeded || st.Ref != nil || st.Seconds < 0 {
			t.Errorf("%s: %+v (present %v)", op, st, ok)
		}
	}
	if n := e.eng.Loaded(); n != 0 {
		t.Errorf("%d queues loaded after the check", n)
	}

	bad := newEnv(t, envOpts{real: true, server: func(o *Options) { o.Engine = failingPost{o.Engine.(*index.Engine)} }})
	h = adminHealth(t, bad.srv)
	post := h.OperationStatus["post_messages"]
	if post.Succeeded || post.Ref == nil {
		t.Fatalf("failed post reported as %+v", post)
	}
	if _, ok := h.OperationStatus["claim_messages"]; ok {
		t.Error("claim ran after the post failed")
	}
	if del := h.OperationStatus["delete_queue"]; !del.Succeeded {
		t.Errorf("scratch queue not deleted: %+v", del)
	}
}

// TestHealthNamesDamagedQueues: a queue whose objects vanished from the
// store is named in the admin health document, under its pool.
func TestHealthNamesDamagedQueues(t *testing.T) {
	st := memdriver.New()
	// Every batch folds: the queue's container holds its messages (a
	// queue only in the journal has none to lose).
	e := newEnv(t, envOpts{real: true, store: st, index: func(o *index.Options) { o.FoldBytes = 1 }})
	e.must(req{method: "POST", path: "/v2/queues/lost/messages", body: `{"messages": [{"body": 1}]}`}, 201)
	// The fold runs after the post is answered (Release then waits for
	// the rest of it): wait until it has written into the container.
	drivertest.Eventually(t, "the queue folded into its container", func() bool {
		p, _ := st.ListContainers(context.Background(), nil)
		for _, c := range p.Objects {
			if c.Key == index.ControlContainer {
				continue
			}
			if keys, err := st.List(context.Background(), c.Key, nil); err == nil && len(keys.Objects) > 0 {
				return true
			}
		}
		return false
	})
	if err := e.eng.Release(context.Background(), func(index.QueueRef) bool { return true }); err != nil {
		t.Fatal(err)
	}
	p, _ := st.ListContainers(context.Background(), nil)
	for _, c := range p.Objects {
		if c.Key == index.ControlContainer {
			continue
		}
		keys, _ := st.List(context.Background(), c.Key, nil)
		for _, k := range keys.Objects {
			_ = st.Delete(context.Background(), c.Key, k.Key)
		}
		if err := st.DeleteContainer(context.Background(), c.Key); err != nil {
			t.Fatal(err)
		}
	}
	e.must(req{method: "GET", path: "/v2/queues/lost/messages?echo=true"}, 503)
	h := adminHealth(t, e.srv)
	if len(h.Pools) != 1 || len(h.Pools[0].DamagedQueues) != 1 || h.Pools[0].DamagedQueues[0] != project+"/lost" {
		t.Fatalf("admin health pools: %+v", h.Pools)
	}
}
