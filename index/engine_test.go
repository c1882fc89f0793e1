package index

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cistern-mq/cistern/drivers"
	"github.com/cistern-mq/cistern/drivers/drivertest"
)

var ctx = context.Background()

func TestPostListClaimDelete(t *testing.T) {
	mem := newMem()
	clk := newFakeClock()
	e := openEngine(t, mem, clk, nil)
	q := QueueRef{Project: "p", Name: "q"}
	ids, err := e.Post(ctx, q, "client-a", bodies(5, "x"))
	if err != nil || len(ids) != 5 {
		t.Fatalf("Post = %v, %v", ids, err)
	}
	msgs, err := e.List(ctx, q, ListOptions{Limit: 10, Echo: true, ClientID: "client-a"})
	if err != nil || len(msgs) != 5 {
		t.Fatalf("List = %d, %v", len(msgs), err)
	}
	for i, m := range msgs {
		if m.ID != ids[i] {
			t.Errorf("msg %d id %s, want %s", i, m.ID, ids[i])
		}
		var b map[string]any
		if err := json.Unmarshal(m.Body, &b); err != nil || b["n"] != float64(i) {
			t.Errorf("msg %d body %s", i, m.Body)
		}
	}
	if got, _ := e.List(ctx, q, ListOptions{Limit: 10, ClientID: "client-a"}); len(got) != 0 {
		t.Errorf("echo=false listed %d of our own messages", len(got))
	}
	c, err := e.Claim(ctx, q, ClaimOptions{TTL: 60, Grace: 60, Limit: 3})
	if err != nil || c == nil || len(c.Messages) != 3 {
		t.Fatalf("Claim = %+v, %v", c, err)
	}
	if c.Messages[0].ID != ids[0] || c.Messages[2].ID != ids[2] {
		t.Errorf("claim not FIFO")
	}
	if err := e.DeleteMessage(ctx, q, ids[0], ""); !errors.Is(err, ErrMessageClaimed) {
		t.Errorf("delete claimed without claim id: %v", err)
	}
	if err := e.DeleteMessage(ctx, q, ids[3], c.ID); !errors.Is(err, ErrMessageNotClaimed) {
		t.Errorf("delete unclaimed with claim id: %v", err)
	}
	if err := e.DeleteMessage(ctx, q, ids[0], c.ID); err != nil {
		t.Errorf("delete with claim id: %v", err)
	}
	c2, err := e.Claim(ctx, q, ClaimOptions{TTL: 60, Grace: 60, Limit: 10})
	if err != nil || len(c2.Messages) != 2 || c2.Messages[0].ID != ids[3] {
		t.Fatalf("second claim = %+v, %v", c2, err)
	}
	if err := e.DeleteMessage(ctx, q, ids[1], c2.ID); !errors.Is(err, ErrMessageNotClaimedBy) {
		t.Errorf("delete with another claim's id: %v", err)
	}
	clk.Advance(61 * time.Second)
	c3, err := e.Claim(ctx, q, ClaimOptions{TTL: 60, Grace: 60, Limit: 10})
	if err != nil || c3 == nil || len(c3.Messages) != 4 || c3.Messages[0].ID != ids[1] {
		t.Fatalf("claim after expiry = %+v, %v", c3, err)
	}
	st, err := e.Stats(ctx, q)
	if err != nil || st.Total != 4 || st.Claimed != 4 {
		t.Errorf("stats = %+v, %v", st, err)
	}
	// Reopen on the same store: everything acknowledged is there.
	e.Close()
	e2 := openEngine(t, mem, clk, nil)
	st2, err := e2.Stats(ctx, q)
	if err != nil || st2.Total != 4 || st2.Claimed != 4 {
		t.Errorf("stats after reopen = %+v, %v", st2, err)
	}
	got, err := e2.GetClaim(ctx, q, c3.ID)
	if err != nil || len(got.Messages) != 4 {
		t.Fatalf("GetClaim after reopen = %+v, %v", got, err)
	}
	for i, m := range got.Messages {
		if string(m.Body) != string(c3.Messages[i].Body) {
			t.Errorf("body %d after reopen: %s want %s", i, m.Body, c3.Messages[i].Body)
		}
	}
}

func TestGroupCommit(t *testing.T) {
	mem := newMem()
	// One queue's own logs; TestJournalGroupCommit has the journal's.
	e := openEngine(t, mem, newFakeClock(), func(o *Options) { o.NoJournal = true })
	q := QueueRef{Project: "p", Name: "gc"}
	if _, err := e.CreateQueue(ctx, q, nil); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	mem.SetPutHook(func(_ context.Context, c, k string) {
		if k == "log/00000000000000000001" {
			entered <- struct{}{}
			<-release
		}
	})
	before := mem.Count("put")
	errs := make(chan error, 65)
	go func() { _, err := e.Post(ctx, q, "c", bodies(1, "first")); errs <- err }()
	<-entered
	for i := range 64 {
		go func() { _, err := e.Post(ctx, q, "c", bodies(1, fmt.Sprint(i))); errs <- err }()
	}
	// Wait until all 64 wait in the open batch.
	drivertest.Eventually(t, "64 posts queued behind the first", func() bool { return openRecords(e, q) == 64 })
	close(release)
	for range 65 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if puts := mem.Count("put") - before; puts != 2 {
		t.Errorf("65 posts took %d puts, want 2", puts)
	}
}

func TestDepth(t *testing.T) {
	e := openEngine(t, newMem(), newFakeClock(), nil)
	for i := range 3 {
		if _, err := e.Post(ctx, QueueRef{Project: "p", Name: fmt.Sprint("d", i)}, "c", bodies(i+1, "x")); err != nil {
			t.Fatal(err)
		}
	}
	if q, m := e.Depth(); q != 3 || m != 6 {
		t.Errorf("Depth = %d queues, %d messages; want 3, 6", q, m)
	}
}

// A queue whose container was removed behind Cistern's back can still be
// used and deleted.
func TestMissingContainer(t *testing.T) {
	mem := newMem()
	e := openEngine(t, mem, newFakeClock(), nil)
	q := QueueRef{Project: "p", Name: "lost"}
	if _, err := e.Post(ctx, q, "c", bodies(2, "x")); err != nil {
		t.Fatal(err)
	}
	e.Close()
	p, _ := mem.ListContainers(ctx, nil)
	for _, c := range p.Objects {
		if c.Key != controlContainer {
			keys, _ := mem.List(ctx, c.Key, nil)
			for _, k := range keys.Objects {
				mem.Delete(ctx, c.Key, k.Key)
			}
			if err := mem.DeleteContainer(ctx, c.Key); err != nil {
				t.Fatal(err)
			}
		}
	}
	e2 := openEngine(t, mem, newFakeClock(), nil)
	if _, err := e2.Post(ctx, q, "c", bodies(1, "y")); !errors.Is(err, ErrQueueDamaged) {
		t.Fatalf("post to a queue whose container vanished: %v, want ErrQueueDamaged", err)
	}
	if _, err := mem.List(ctx, "q-"+catalogGen(t, mem, q), nil); err == nil {
		t.Error("the vanished container was made again silently")
	}
	if d := e2.DamagedQueues(); len(d) != 1 || d[0] != q {
		t.Errorf("damaged queues for operators: %v", d)
	}
	if err := e2.DeleteQueue(ctx, q); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if d := e2.DamagedQueues(); len(d) != 0 {
		t.Errorf("damaged queues after the delete: %v", d)
	}
	if _, err := e2.Post(ctx, q, "c", bodies(1, "z")); err != nil {
		t.Fatalf("post after the damaged queue was deleted: %v", err)
	}
}

// A queue whose container vanished after it was snapshotted fails to
// load, loudly, and can still be deleted.
func TestMissingContainerAfterSnapshot(t *testing.T) {
	mem := newMem()
	e := openEngine(t, mem, newFakeClock(), func(o *Options) { o.SnapshotLogs = 2 })
	q := QueueRef{Project: "p", Name: "lost"}
	for range 4 {
		if _, err := e.Post(ctx, q, "c", bodies(1, "x")); err != nil {
			t.Fatal(err)
		}
	}
	e.Close()
	gen := catalogGen(t, mem, q)
	keys, _ := mem.List(ctx, "q-"+gen, nil)
	for _, k := range keys.Objects {
		mem.Delete(ctx, "q-"+gen, k.Key)
	}
	if err := mem.DeleteContainer(ctx, "q-"+gen); err != nil {
		t.Fatal(err)
	}
	e2 := openEngine(t, mem, newFakeClock(), nil)
	if _, err := e2.List(ctx, q, ListOptions{Limit: 10, Echo: true}); !errors.Is(err, ErrQueueDamaged) {
		t.Fatalf("list of a queue whose container vanished: %v, want ErrQueueDamaged", err)
	}
	if err := e2.DeleteQueue(ctx, q); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, exists, err := e2.Queue(ctx, q); err != nil || exists {
		t.Fatalf("after delete: exists %v, %v", exists, err)
	}
}

func catalogGen(t *testing.T, s drivers.Store, q QueueRef) string {
	t.Helper()
	data, err := s.Get(ctx, controlContainer, catalogKey(q), nil)
	if err != nil {
		t.Fatal(err)
	}
	var ent catalogEntry
	if err := json.Unmarshal(data, &ent); err != nil {
		t.Fatal(err)
	}
	return ent.Gen
}
