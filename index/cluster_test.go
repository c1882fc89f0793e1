package index

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/cistern-mq/cistern/drivers"
)

// fenceTruth is what a coordinator knows: who owns each queue at which
// epoch, and the heads committed. Nodes see it through a nodeFence, whose
// belief about its own ownership may lag (a paused node that has not
// noticed yet): Commit checks the truth, as etcd's transaction does.
type fenceTruth struct {
	mu      sync.Mutex
	next    int64
	owner   map[QueueRef]string
	epoch   map[QueueRef]int64
	heads   map[QueueRef][]byte
	commits int
	down    bool
}

func newFenceTruth() *fenceTruth {
	return &fenceTruth{next: 1, owner: map[QueueRef]string{}, epoch: map[QueueRef]int64{}, heads: map[QueueRef][]byte{}}
}

// give makes node the owner of ref at a new epoch.
func (t *fenceTruth) give(ref QueueRef, node string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.next++
	t.owner[ref], t.epoch[ref] = node, t.next
}

func (t *fenceTruth) head(ref QueueRef) (head, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	data, ok := t.heads[ref]
	if !ok {
		return head{}, false
	}
	h, err := decodeHead(data)
	if err != nil {
		panic(err)
	}
	return h, true
}

type nodeFence struct {
	t    *fenceTruth
	node string
	// believe, when set, is the epoch this node thinks it owns every
	// queue at, whatever the truth (a paused owner).
	believe map[QueueRef]int64
}

func (f *nodeFence) Epoch(ref QueueRef) (int64, bool) {
	f.t.mu.Lock()
	defer f.t.mu.Unlock()
	if ep, ok := f.believe[ref]; ok {
		return ep, true
	}
	if f.t.owner[ref] != f.node {
		return 0, false
	}
	return f.t.epoch[ref], true
}

func (f *nodeFence) Head(_ context.Context, ref QueueRef) ([]byte, bool, error) {
	f.t.mu.Lock()
	defer f.t.mu.Unlock()
	if f.t.down {
		return nil, false, drivers.ErrUnavailable
	}
	data, ok := f.t.heads[ref]
	return data, ok, nil
}

func (f *nodeFence) Commit(_ context.Context, ref QueueRef, epoch int64, data []byte) error {
	f.t.mu.Lock()
	defer f.t.mu.Unlock()
	if f.t.down {
		return drivers.ErrUnavailable
	}
	if f.t.owner[ref] != f.node || f.t.epoch[ref] != epoch {
		return fmt.Errorf("%w: %s", ErrFenced, ref)
	}
	if data != nil {
		if _, err := decodeHead(data); err != nil {
			panic(err) // the engine only commits what decodes
		}
	}
	f.t.commits++
	if data == nil {
		delete(f.t.heads, ref)
	} else {
		f.t.heads[ref] = data
	}
	return nil
}

func openFenced(t *testing.T, s drivers.Store, truth *fenceTruth, node string) (*Engine, *nodeFence) {
	f := &nodeFence{t: truth, node: node}
	return openEngine(t, s, newFakeClock(), func(o *Options) { o.Fence = f }), f
}

func listBodies(t *testing.T, e *Engine, ref QueueRef) []string {
	t.Helper()
	msgs, err := e.List(context.Background(), ref, ListOptions{Limit: 20, Echo: true})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range msgs {
		out = append(out, string(m.Body))
	}
	return out
}

func TestClusterOwnersNeverShareALog(t *testing.T) {
	ctx := context.Background()
	s := newMem()
	truth := newFenceTruth()
	ref := QueueRef{Project: "p", Name: "q"}
	truth.give(ref, "a")
	a, af := openFenced(t, s, truth, "a")
	if _, err := a.CreateQueue(ctx, ref, nil); err != nil {
		t.Fatal(err)
	}
	post := func(e *Engine, body string) error {
		_, err := e.Post(ctx, ref, "c", []NewMessage{{Body: json.RawMessage(body), TTL: 300}})
		return err
	}
	if err := post(a, `"a1"`); err != nil {
		t.Fatal(err)
	}

	// b takes over while a, paused, still believes it owns the queue.
	aEpoch, _ := af.Epoch(ref)
	af.believe = map[QueueRef]int64{ref: aEpoch}
	truth.give(ref, "b")
	b, _ := openFenced(t, s, truth, "b")
	if got := listBodies(t, b, ref); fmt.Sprint(got) != `["a1"]` {
		t.Fatalf("new owner sees %v", got)
	}
	h, _ := truth.head(ref)
	if len(h.Skip) != 1 || h.Skip[0] != h.Log {
		t.Fatalf("take-over head %+v: want the last number reserved and skipped", h)
	}

	// a's write lands in the store but is never acknowledged or read.
	if err := post(a, `"a2"`); !errors.Is(err, ErrFenced) {
		t.Fatalf("stale owner's post: %v, want ErrFenced", err)
	}
	if err := post(b, `"b1"`); err != nil {
		t.Fatalf("new owner's post: %v", err)
	}
	keys, err := s.List(ctx, queueContainer(h.Gen), &drivers.ListOptions{Prefix: logPrefix})
	if err != nil {
		t.Fatal(err)
	}
	if len(keys.Objects) != 3 { // a1, a2 (stale, skipped), b1
		t.Fatalf("logs in the store: %v", keys.Objects)
	}

	truth.give(ref, "c")
	c, _ := openFenced(t, s, truth, "c")
	if got := listBodies(t, c, ref); fmt.Sprint(got) != `["a1" "b1"]` {
		t.Fatalf("third owner sees %v, want the acknowledged posts only", got)
	}
}

func TestClusterNotOwnerRefused(t *testing.T) {
	truth := newFenceTruth()
	ref := QueueRef{Project: "p", Name: "q"}
	truth.give(ref, "b")
	a, _ := openFenced(t, newMem(), truth, "a")
	if _, err := a.CreateQueue(context.Background(), ref, nil); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("create on a non-owner: %v", err)
	}
}

// TestClusterReloadAfterRegain: a node that lost a queue and gained it
// again must not answer from what it loaded the first time.
func TestClusterReloadAfterRegain(t *testing.T) {
	ctx := context.Background()
	s := newMem()
	truth := newFenceTruth()
	ref := QueueRef{Project: "p", Name: "q"}
	truth.give(ref, "a")
	a, _ := openFenced(t, s, truth, "a")
	if _, err := a.CreateQueue(ctx, ref, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Post(ctx, ref, "c", bodies(1, "a")); err != nil {
		t.Fatal(err)
	}
	truth.give(ref, "b")
	b, _ := openFenced(t, s, truth, "b")
	if _, err := b.Post(ctx, ref, "c", bodies(2, "b")); err != nil {
		t.Fatal(err)
	}
	truth.give(ref, "a")
	if got := listBodies(t, a, ref); len(got) != 3 {
		t.Fatalf("regained owner sees %v, want all three", got)
	}
}

func TestClusterAbsentIsPerEpoch(t *testing.T) {
	ctx := context.Background()
	s := newMem()
	truth := newFenceTruth()
	ref := QueueRef{Project: "p", Name: "q"}
	truth.give(ref, "a")
	a, _ := openFenced(t, s, truth, "a")
	if _, ok, err := a.Queue(ctx, ref); err != nil || ok {
		t.Fatalf("queue before create: %v %v", ok, err)
	}
	truth.give(ref, "b")
	b, _ := openFenced(t, s, truth, "b")
	if _, err := b.CreateQueue(ctx, ref, nil); err != nil {
		t.Fatal(err)
	}
	truth.give(ref, "a")
	if _, ok, err := a.Queue(ctx, ref); err != nil || !ok {
		t.Fatalf("queue created by another owner: exists %v, %v", ok, err)
	}
}

func TestClusterCreateAndDeleteLeftovers(t *testing.T) {
	ctx := context.Background()
	s := newMem()
	truth := newFenceTruth()
	ref := QueueRef{Project: "p", Name: "q"}
	truth.give(ref, "a")
	a, _ := openFenced(t, s, truth, "a")

	// The coordinator is down after the entry is written: the create
	// fails and the queue does not exist.
	truth.mu.Lock()
	truth.down = true
	truth.mu.Unlock()
	if _, err := a.CreateQueue(ctx, ref, nil); !errors.Is(err, drivers.ErrUnavailable) {
		t.Fatalf("create while the coordinator is down: %v", err)
	}
	truth.mu.Lock()
	truth.down = false
	truth.mu.Unlock()
	truth.give(ref, "b")
	b, _ := openFenced(t, s, truth, "b")
	if _, ok, err := b.Queue(ctx, ref); err != nil || ok {
		t.Fatalf("a create that never committed: exists %v, %v", ok, err)
	}
	if created, err := b.CreateQueue(ctx, ref, nil); err != nil || !created {
		t.Fatalf("create over a leftover: %v %v", created, err)
	}
	if _, err := b.Post(ctx, ref, "c", bodies(3, "b")); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteQueue(ctx, ref); err != nil {
		t.Fatal(err)
	}
	if _, ok := truth.head(ref); ok {
		t.Fatal("head still committed after delete")
	}
	truth.give(ref, "a")
	if _, ok, err := a.Queue(ctx, ref); err != nil || ok {
		t.Fatalf("deleted queue: exists %v, %v", ok, err)
	}
}

func TestClusterAdoptsSingleNodeQueue(t *testing.T) {
	ctx := context.Background()
	s := newMem()
	ref := QueueRef{Project: "p", Name: "q"}
	single := openEngine(t, s, newFakeClock(), nil)
	if _, err := single.CreateQueue(ctx, ref, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := single.Post(ctx, ref, "c", bodies(5, "s")); err != nil {
		t.Fatal(err)
	}
	single.Close()

	truth := newFenceTruth()
	truth.give(ref, "a")
	a, _ := openFenced(t, s, truth, "a")
	if got := listBodies(t, a, ref); len(got) != 5 {
		t.Fatalf("adopted queue holds %d messages, want 5", len(got))
	}
	data, err := s.Get(ctx, controlContainer, catalogKey(ref), nil)
	if err != nil {
		t.Fatal(err)
	}
	if ent, _ := decodeCatalogEntry(data); !ent.Cluster {
		t.Fatal("adopted entry not marked for cluster mode")
	}
}

func TestClusterReleaseFlushesAndUnloads(t *testing.T) {
	ctx := context.Background()
	s := newMem()
	truth := newFenceTruth()
	ref := QueueRef{Project: "p", Name: "q"}
	truth.give(ref, "a")
	a, _ := openFenced(t, s, truth, "a")
	if _, err := a.CreateQueue(ctx, ref, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Post(ctx, ref, "c", bodies(2, "a")); err != nil {
		t.Fatal(err)
	}
	if err := a.Release(ctx, func(r QueueRef) bool { return r == ref }); err != nil {
		t.Fatal(err)
	}
	if n := a.Loaded(); n != 0 {
		t.Fatalf("%d queues loaded after release", n)
	}
	truth.give(ref, "b")
	b, _ := openFenced(t, s, truth, "b")
	if got := listBodies(t, b, ref); len(got) != 2 {
		t.Fatalf("after hand-off: %v", got)
	}
}

// TestClusterManyTakeOversStayBounded: owners that come and go without
// writing would grow the head's skip list; a snapshot keeps it short.
func TestClusterManyTakeOversStayBounded(t *testing.T) {
	ctx := context.Background()
	s := newMem()
	truth := newFenceTruth()
	ref := QueueRef{Project: "p", Name: "q"}
	truth.give(ref, "n0")
	e, _ := openFenced(t, s, truth, "n0")
	if _, err := e.CreateQueue(ctx, ref, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Post(ctx, ref, "c", bodies(1, "x")); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3*skipsBeforeSnapshot; i++ {
		node := fmt.Sprint("n", i)
		truth.give(ref, node)
		ei, _ := openFenced(t, s, truth, node)
		if got := listBodies(t, ei, ref); len(got) != 1 {
			t.Fatalf("owner %d sees %v", i, got)
		}
		ei.Close()
	}
	h, _ := truth.head(ref)
	if len(h.Skip) > skipsBeforeSnapshot+1 {
		t.Fatalf("head carries %d skipped logs", len(h.Skip))
	}
}

// TestClusterStaleOwnerCannotChangeMetadata: a paused owner that still
// believes it owns a queue can neither create it over the live one nor
// change its metadata: both are refused, and the next owner (and the
// listings) show what the real owner set.
func TestClusterStaleOwnerCannotChangeMetadata(t *testing.T) {
	ctx := context.Background()
	s := newMem()
	truth := newFenceTruth()
	ref := QueueRef{Project: "p", Name: "q"}
	truth.give(ref, "a")
	a, af := openFenced(t, s, truth, "a")
	if _, ok, err := a.Queue(ctx, ref); err != nil || ok {
		t.Fatalf("queue before create: %v %v", ok, err)
	}
	ep, _ := af.Epoch(ref)
	af.believe = map[QueueRef]int64{ref: ep} // a, paused, still believes
	truth.give(ref, "b")
	b, _ := openFenced(t, s, truth, "b")
	if _, err := b.CreateQueue(ctx, ref, json.RawMessage(`{"_default_message_ttl":120,"real":true}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateQueue(ctx, ref, json.RawMessage(`{"stale":true}`)); !errors.Is(err, ErrFenced) {
		t.Fatalf("stale create: %v, want ErrFenced", err)
	}
	// An owner that loaded the queue, then lost it without noticing,
	// cannot change its metadata either.
	truth.give(ref, "d")
	d, df := openFenced(t, s, truth, "d")
	if _, ok, err := d.Queue(ctx, ref); err != nil || !ok {
		t.Fatalf("d loads: %v %v", ok, err)
	}
	dep, _ := df.Epoch(ref)
	df.believe = map[QueueRef]int64{ref: dep}
	truth.give(ref, "c")
	if err := d.SetMetadata(ctx, ref, json.RawMessage(`{"stale":2}`)); !errors.Is(err, ErrFenced) {
		t.Fatalf("stale SetMetadata: %v, want ErrFenced", err)
	}
	c, _ := openFenced(t, s, truth, "c")
	info, ok, err := c.Queue(ctx, ref)
	if err != nil || !ok || !strings.Contains(string(info.Metadata), `"real"`) {
		t.Fatalf("next owner sees %s (%v, %v), want the real owner's metadata", info.Metadata, ok, err)
	}
	qs, err := c.ListQueues(ctx, "p", "", 10, true)
	if err != nil || len(qs) != 1 || !strings.Contains(string(qs[0].Metadata), `"real"`) {
		t.Fatalf("listing shows %+v (%v)", qs, err)
	}
	// The owner's own changes go through, and the listing follows.
	if err := c.SetMetadata(ctx, ref, json.RawMessage(`{"v":3}`)); err != nil {
		t.Fatal(err)
	}
	if qs, _ := c.ListQueues(ctx, "p", "", 10, true); len(qs) != 1 || string(qs[0].Metadata) != `{"v":3}` {
		t.Fatalf("listing after the owner's change: %+v", qs)
	}
}

// TestSingleNodeRefusesClusterQueue: a single node started on a store a
// cluster wrote must not serve the cluster's queues from the store alone
// (it would miss the head's snapshot and skipped logs): it refuses them.
func TestSingleNodeRefusesClusterQueue(t *testing.T) {
	ctx := context.Background()
	s := newMem()
	truth := newFenceTruth()
	ref := QueueRef{Project: "p", Name: "q"}
	truth.give(ref, "a")
	a, _ := openFenced(t, s, truth, "a")
	if _, err := a.Post(ctx, ref, "c", bodies(3, "x")); err != nil {
		t.Fatal(err)
	}
	a.Close()
	single := openEngine(t, s, newFakeClock(), nil)
	if _, err := single.List(ctx, ref, ListOptions{Limit: 10, Echo: true}); !errors.Is(err, ErrClusterQueue) || !errors.Is(err, drivers.ErrUnavailable) {
		t.Fatalf("single node on a cluster's queue: %v, want ErrClusterQueue", err)
	}
}
