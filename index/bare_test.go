package index

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/cistern-mq/cistern/drivers"
)

func containerExists(t *testing.T, s drivers.Store, gen string) bool {
	t.Helper()
	_, err := s.List(ctx, queueContainer(gen), &drivers.ListOptions{Limit: 1})
	if err != nil && !errors.Is(err, drivers.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

// With the journal a queue is made with its catalog entry alone; its first
// fold makes its container and records it.
func TestBareQueueGetsContainerAtFold(t *testing.T) {
	mem := newMem()
	e := openEngine(t, mem, newFakeClock(), nil)
	q := QueueRef{Project: "p", Name: "bare"}
	if created, err := e.CreateQueue(ctx, q, json.RawMessage(`{"k":1}`)); err != nil || !created {
		t.Fatalf("CreateQueue = %v, %v", created, err)
	}
	ent := mustEntry(t, mem, q)
	if !ent.Bare || containerExists(t, mem, ent.Gen) {
		t.Fatalf("a new queue: bare %v, container there %v; want a bare entry and no container", ent.Bare, containerExists(t, mem, ent.Gen))
	}
	if _, err := e.Post(ctx, q, "c", bodies(3, "x")); err != nil {
		t.Fatal(err)
	}
	e.Close() // folds
	ent = mustEntry(t, mem, q)
	if ent.Bare || !ent.Folded || !containerExists(t, mem, ent.Gen) {
		t.Fatalf("after the fold: bare %v, folded %v, container there %v", ent.Bare, ent.Folded, containerExists(t, mem, ent.Gen))
	}
	e = openEngine(t, mem, newFakeClock(), nil)
	msgs, err := e.List(ctx, q, ListOptions{Limit: 10, Echo: true})
	if err != nil || len(msgs) != 3 {
		t.Fatalf("after a restart: %d messages, %v", len(msgs), err)
	}
}

// A bare queue whose node crashed loads from its entry and the journal; an
// engine without the journal makes its container and writes logs there; an
// engine with it again reads them.
func TestBareQueueAcrossEngines(t *testing.T) {
	mem := newMem()
	e := openEngine(t, mem, newFakeClock(), nil)
	q := QueueRef{Project: "p", Name: "bare"}
	if _, err := e.Post(ctx, q, "c", bodies(2, "a")); err != nil {
		t.Fatal(err)
	}
	// e is abandoned, as a crashed process (its janitor does not run);
	// the next engine fences it off the journal.
	if !mustEntry(t, mem, q).Bare {
		t.Fatal("the crashed queue's entry is not bare")
	}
	e = openEngine(t, mem, newFakeClock(), nil)
	if msgs, err := e.List(ctx, q, ListOptions{Limit: 10, Echo: true}); err != nil || len(msgs) != 2 {
		t.Fatalf("after the crash: %d messages, %v", len(msgs), err)
	}
	e.Close()
	logs := openEngine(t, mem, newFakeClock(), func(o *Options) { o.NoJournal = true })
	if _, err := logs.Post(ctx, q, "c", bodies(1, "b")); err != nil {
		t.Fatal(err)
	}
	logs.Close()
	if ent := mustEntry(t, mem, q); ent.Bare || !containerExists(t, mem, ent.Gen) {
		t.Fatalf("after an engine without the journal: bare %v, container there %v", ent.Bare, containerExists(t, mem, ent.Gen))
	}
	e = openEngine(t, mem, newFakeClock(), nil)
	if msgs, err := e.List(ctx, q, ListOptions{Limit: 10, Echo: true}); err != nil || len(msgs) != 3 {
		t.Fatalf("back with the journal: %d messages, %v", len(msgs), err)
	}
}

// Deleting a bare queue leaves nothing behind: no trash entry waits for a
// container that was never made.
func TestBareQueueDeleted(t *testing.T) {
	mem := newMem()
	e := openEngine(t, mem, newFakeClock(), nil)
	q := QueueRef{Project: "p", Name: "bare"}
	if _, err := e.CreateQueue(ctx, q, nil); err != nil {
		t.Fatal(err)
	}
	if err := e.DeleteQueue(ctx, q); err != nil {
		t.Fatal(err)
	}
	e.Close() // waits for the background removal
	p, err := mem.List(ctx, controlContainer, &drivers.ListOptions{Prefix: trashPrefix})
	if err != nil || len(p.Objects) != 0 {
		t.Fatalf("trash after deleting a bare queue: %v, %v", p.Objects, err)
	}
	if _, err := mem.Get(ctx, controlContainer, catalogKey(q), nil); !errors.Is(err, drivers.ErrNotFound) {
		t.Fatalf("catalog entry after the delete: %v", err)
	}
}

// A bare queue can be located for a migration: it gets its container, so
// that the copy finds one.
func TestBareQueueLocated(t *testing.T) {
	mem := newMem()
	e := openEngine(t, mem, newFakeClock(), nil)
	q := QueueRef{Project: "p", Name: "bare"}
	if _, err := e.CreateQueue(ctx, q, nil); err != nil {
		t.Fatal(err)
	}
	loc, exists, err := e.Locate(ctx, q)
	if err != nil || !exists {
		t.Fatalf("Locate = %v, %v", exists, err)
	}
	dst := newMem()
	if _, err := CopyQueue(ctx, mem, dst, loc.Container); err != nil {
		t.Fatalf("copying a bare queue: %v", err)
	}
	var ent catalogEntry
	if err := json.Unmarshal(loc.Entry, &ent); err != nil || ent.Bare {
		t.Fatalf("located entry: bare %v, %v", ent.Bare, err)
	}
}

// The janitor passes over a queue that does not exist while a request holds
// it (it used to sweep its index, which such a queue does not have, and
// crash the node: a request for any missing name at the wrong moment).
func TestJanitorSkipsMissingQueueInUse(t *testing.T) {
	e := openEngine(t, newMem(), newFakeClock(), nil)
	q, err := e.acquire(ctx, QueueRef{Project: "p", Name: "nobody"})
	if err != nil {
		t.Fatal(err)
	}
	defer e.release(q)
	e.Janitor()
}
