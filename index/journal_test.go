package index

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cistern-mq/cistern/drivers"
	"github.com/cistern-mq/cistern/drivers/drivertest"
)

// TestJournalGroupCommit: posts to 64 different queues that arrive while
// one journal object is being written go out together in the next one:
// two store writes for 65 posts, where each queue's own log would take 65.
func TestJournalGroupCommit(t *testing.T) {
	ctx := context.Background()
	mem := newMem()
	e := openEngine(t, mem, newFakeClock(), nil)
	refs := make([]QueueRef, 65)
	for i := range refs {
		refs[i] = QueueRef{Project: "p", Name: fmt.Sprintf("q%d", i)}
		if _, err := e.CreateQueue(ctx, refs[i], nil); err != nil {
			t.Fatal(err)
		}
	}
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	var journalPuts, logPuts atomic.Int64
	mem.SetPutHook(func(_ context.Context, c, k string) {
		switch {
		case strings.HasPrefix(k, journalPrefix):
			if journalPuts.Add(1) == 1 {
				entered <- struct{}{}
				<-release
			}
		case strings.HasPrefix(k, logPrefix):
			logPuts.Add(1)
		}
	})
	errs := make(chan error, len(refs))
	go func() { _, err := e.Post(ctx, refs[0], "c", bodies(1, "first")); errs <- err }()
	<-entered
	for _, ref := range refs[1:] {
		go func() { _, err := e.Post(ctx, ref, "c", bodies(1, ref.Name)); errs <- err }()
	}
	drivertest.Eventually(t, "64 queues waiting for the journal", func() bool {
		e.journal.mu.Lock()
		defer e.journal.mu.Unlock()
		return e.journal.open != nil && len(e.journal.open.entries) == 64
	})
	close(release)
	for range refs {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := journalPuts.Load(); n != 2 {
		t.Errorf("65 posts to 65 queues took %d journal writes, want 2", n)
	}
	if n := logPuts.Load(); n != 0 {
		t.Errorf("%d log objects written beside the journal", n)
	}
	for _, ref := range refs {
		if got := listBodies(t, e, ref); len(got) != 1 {
			t.Errorf("%s holds %d messages, want 1", ref, len(got))
		}
	}
}

// journalState posts, claims and deletes on three queues and returns what
// each must hold: message ids in order.
func journalWork(t *testing.T, e *Engine, refs []QueueRef) map[QueueRef][]string {
	t.Helper()
	ctx := context.Background()
	want := map[QueueRef][]string{}
	for i, ref := range refs {
		ids, err := e.Post(ctx, ref, "c", bodies(5+i, ref.Name))
		if err != nil {
			t.Fatal(err)
		}
		if err := e.DeleteMessage(ctx, ref, ids[0], ""); err != nil {
			t.Fatal(err)
		}
		want[ref] = ids[1:]
	}
	if _, err := e.Claim(ctx, refs[0], ClaimOptions{TTL: 300, Grace: 60, Limit: 2}); err != nil {
		t.Fatal(err)
	}
	return want
}

func listIDs(t *testing.T, e *Engine, ref QueueRef) []string {
	t.Helper()
	msgs, err := e.List(context.Background(), ref, ListOptions{Limit: 100, Echo: true, IncludeClaimed: true})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range msgs {
		if len(m.Body) == 0 {
			t.Errorf("%s: message %s has no body", ref, m.ID)
		}
		ids = append(ids, m.ID)
	}
	return ids
}

func checkIDs(t *testing.T, e *Engine, want map[QueueRef][]string, when string) {
	t.Helper()
	for ref, ids := range want {
		if got := listIDs(t, e, ref); fmt.Sprint(got) != fmt.Sprint(ids) {
			t.Errorf("%s: %s holds %v, want %v", when, ref, got, ids)
		}
	}
}

func threeRefs() []QueueRef {
	return []QueueRef{{Project: "p", Name: "a"}, {Project: "p", Name: "b"}, {Project: "o/x", Name: "a"}}
}

// TestJournalRecoveryAfterCrash: an engine that stops without closing
// (kill -9) leaves its queues only in the journal; the next engine reads
// the journal at open and each queue applies its sections as it loads,
// claims and deletes included, with bodies.
func TestJournalRecoveryAfterCrash(t *testing.T) {
	mem := newMem()
	clk := newFakeClock()
	e1 := openEngine(t, mem, clk, nil)
	refs := threeRefs()
	want := journalWork(t, e1, refs)
	if objs, secs := e1.journal.stats(); objs == 0 || secs == 0 {
		t.Fatalf("journal holds %d objects, %d sections: nothing went through it", objs, secs)
	}
	// e1 is abandoned, as a crashed process; its janitor does not run.
	e2 := openEngine(t, mem, clk, nil)
	checkIDs(t, e2, want, "after a crash")
	c, err := e2.Claim(context.Background(), refs[0], ClaimOptions{TTL: 300, Grace: 60, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Messages) != len(want[refs[0]])-2 {
		t.Errorf("claim after a crash took %d messages, want %d (two were claimed before it)", len(c.Messages), len(want[refs[0]])-2)
	}
}

// TestJournalFoldAndTrim: folds move the queues out of the journal into
// their own containers (body objects and snapshots); once two folds have
// run the journal's objects are deleted and its start recorded, and a new
// engine loads every queue from its container alone.
func TestJournalFoldAndTrim(t *testing.T) {
	mem := newMem()
	clk := newFakeClock()
	e1 := openEngine(t, mem, clk, nil)
	refs := threeRefs()
	want := journalWork(t, e1, refs)
	clk.Advance(2 * time.Minute)
	drivertest.Eventually(t, "the journal emptied by folds", func() bool {
		e1.Janitor()
		objs, secs := e1.journal.stats()
		return objs == 0 && secs == 0
	})
	p, err := mem.List(context.Background(), controlContainer, &drivers.ListOptions{Prefix: journalPrefix})
	if err != nil || len(p.Objects) != 0 {
		t.Fatalf("journal objects left after the trim: %v, %v", p.Objects, err)
	}
	if _, err := mem.Get(context.Background(), controlContainer, journalStartKey, nil); err != nil {
		t.Fatalf("journal start not recorded: %v", err)
	}
	// Every body is in a body object of its queue now.
	e2 := openEngine(t, mem, clk, nil)
	if objs, secs := e2.journal.stats(); objs != 0 || secs != 0 {
		t.Errorf("second engine read %d journal objects, %d sections", objs, secs)
	}
	checkIDs(t, e2, want, "after folds")
	ctr := queueContainer(mustEntry(t, mem, refs[0]).Gen)
	p, err = mem.List(context.Background(), ctr, &drivers.ListOptions{Prefix: bodyPrefix})
	if err != nil || len(p.Objects) == 0 {
		t.Errorf("no body object in %s: %v", ctr, err)
	}
}

func mustEntry(t *testing.T, s drivers.Store, ref QueueRef) catalogEntry {
	t.Helper()
	data, err := s.Get(context.Background(), controlContainer, catalogKey(ref), nil)
	if err != nil {
		t.Fatal(err)
	}
	ent, err := decodeCatalogEntry(data)
	if err != nil {
		t.Fatal(err)
	}
	return ent
}

// TestJournalCloseFolds: a clean stop leaves no journal behind, so the
// store holds each queue in its own container.
func TestJournalCloseFolds(t *testing.T) {
	mem := newMem()
	clk := newFakeClock()
	e1, err := Open(context.Background(), Options{Store: mem, Clock: clk, NoJanitor: true})
	if err != nil {
		t.Fatal(err)
	}
	refs := threeRefs()
	want := journalWork(t, e1, refs)
	if err := e1.Close(); err != nil {
		t.Fatal(err)
	}
	p, err := mem.List(context.Background(), controlContainer, &drivers.ListOptions{Prefix: journalPrefix})
	if err != nil || len(p.Objects) != 0 {
		t.Fatalf("journal objects left after Close: %d, %v", len(p.Objects), err)
	}
	logs, err := Open(context.Background(), Options{Store: mem, Clock: clk, NoJanitor: true, NoJournal: true})
	if err != nil {
		t.Fatal(err)
	}
	checkIDs(t, logs, want, "read without the journal after Close")
	// Logs written after a fold's snapshot are read by the journal's
	// engine too (the engine without it cleared the folded mark).
	ids, err := logs.Post(context.Background(), refs[2], "c", bodies(3, "logs"))
	if err != nil {
		t.Fatal(err)
	}
	want[refs[2]] = append(want[refs[2]], ids...)
	logs.Close()
	checkIDs(t, openEngine(t, mem, clk, nil), want, "journal again after logs")
}

// TestJournalUnreadableRefusesOpen: a journal object that does not decode
// stops the engine from opening (guessing could lose what was
// acknowledged), and it opens once the object reads whole again.
func TestJournalUnreadableRefusesOpen(t *testing.T) {
	mem := newMem()
	clk := newFakeClock()
	e1 := openEngine(t, mem, clk, nil)
	want := journalWork(t, e1, threeRefs())
	ctx := context.Background()
	good, err := mem.Get(ctx, controlContainer, journalKey(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	bad := append([]byte(nil), good...)
	bad[len(bad)/2] ^= 0xff
	if err := mem.Put(ctx, controlContainer, journalKey(1), bad, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, Options{Store: mem, Clock: clk, NoJanitor: true}); !errors.Is(err, drivers.ErrUnavailable) {
		t.Fatalf("Open over a damaged journal: %v, want ErrUnavailable", err)
	}
	if err := mem.Put(ctx, controlContainer, journalKey(1), good, nil); err != nil {
		t.Fatal(err)
	}
	checkIDs(t, openEngine(t, mem, clk, nil), want, "journal whole again")
}

// TestJournalReadsLogsOfOlderFormat: a store written with each queue's
// own logs (before the journal) loads, takes new work through the
// journal, and holds both after a crash.
func TestJournalReadsLogsOfOlderFormat(t *testing.T) {
	mem := newMem()
	clk := newFakeClock()
	old := openEngine(t, mem, clk, func(o *Options) { o.NoJournal = true })
	refs := threeRefs()
	want := journalWork(t, old, refs)
	old.Close()
	e := openEngine(t, mem, clk, nil)
	checkIDs(t, e, want, "older logs through the journal engine")
	ids, err := e.Post(context.Background(), refs[1], "c", bodies(2, "new"))
	if err != nil {
		t.Fatal(err)
	}
	want[refs[1]] = append(want[refs[1]], ids...)
	checkIDs(t, openEngine(t, mem, clk, nil), want, "logs and journal after a crash")
}

// TestClusterRefusesUnfoldedJournal: a cluster node does not start on a
// store whose journal still holds batches (a single node killed), since
// it would not see them.
func TestClusterRefusesUnfoldedJournal(t *testing.T) {
	mem := newMem()
	clk := newFakeClock()
	e1 := openEngine(t, mem, clk, nil)
	journalWork(t, e1, threeRefs())
	_, err := Open(context.Background(), Options{Store: mem, Clock: clk, NoJanitor: true, Fence: &nodeFence{t: newFenceTruth(), node: "a"}})
	if err == nil || !strings.Contains(err.Error(), "journal") {
		t.Fatalf("cluster Open over an unfolded journal: %v, want a refusal naming the journal", err)
	}
}
