package index_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cistern-mq/cistern/drivers"
	"github.com/cistern-mq/cistern/drivers/memdriver"
	"github.com/cistern-mq/cistern/index"
	"github.com/cistern-mq/cistern/index/enginetest"
)

// Recovery of the node's journal, in the cases
// TestModelJournal found (its sequences are kept under testdata/rapid).

// journalKeys lists the journal objects in s.
func journalKeys(t *testing.T, s drivers.Store) []string {
	t.Helper()
	p, err := s.List(ctx, index.ControlContainer, &drivers.ListOptions{Prefix: "journal/"})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, o := range p.Objects {
		out = append(out, o.Key)
	}
	return out
}

// TestJournalMissingObjectRefused: of two journal objects holding
// acknowledged posts, the first is lost. Open must refuse, rather than
// stop at the gap and serve the queue without them, and open once the
// object is back.
func TestJournalMissingObjectRefused(t *testing.T) {
	mem := memdriver.New()
	clk := enginetest.NewClock()
	ref := index.QueueRef{Project: "p", Name: "q"}
	dead := &enginetest.Crashable{Store: mem}
	e := openFaultWith(t, index.Options{Store: dead, Clock: clk})
	a := postOne(t, e, ref, `"a"`)
	b := postOne(t, e, ref, `"b"`)
	dead.Crash() // kill -9: the journal stays as it is

	keys := journalKeys(t, mem)
	if len(keys) < 2 {
		t.Fatalf("journal objects %v, want two at least", keys)
	}
	lost := keys[0]
	data, err := mem.Get(ctx, index.ControlContainer, lost, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := mem.Delete(ctx, index.ControlContainer, lost); err != nil {
		t.Fatal(err)
	}
	if e2, err := index.Open(ctx, index.Options{Store: mem, Clock: clk, NoJanitor: true}); err == nil {
		got, _ := e2.List(ctx, ref, index.ListOptions{Limit: 10, Echo: true})
		e2.Close()
		t.Fatalf("Open with %s missing served %s holding %v", lost, ref, bodiesOf(got))
	} else if !errors.Is(err, drivers.ErrUnavailable) {
		t.Fatalf("Open with %s missing: %v, want ErrUnavailable", lost, err)
	}

	if err := mem.Put(ctx, index.ControlContainer, lost, data, nil); err != nil {
		t.Fatal(err)
	}
	e3 := openFault(t, mem)
	got, err := e3.GetMessages(ctx, ref, []string{a, b})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{`"a"`, `"b"`}; !slices.Equal(bodiesOf(got), want) {
		t.Fatalf("after the object is back: %v, want %v", bodiesOf(got), want)
	}
}

// TestJournalTrimLeftoversDeleted: a trim records the new journal-start
// and then fails to delete the objects below it. The next engine deletes
// them: nothing reads them, and nothing else would.
func TestJournalTrimLeftoversDeleted(t *testing.T) {
	mem := memdriver.New()
	ref := index.QueueRef{Project: "p", Name: "q"}
	e := openFault(t, mem)
	postOne(t, e, ref, `"a"`)
	postOne(t, e, ref, `"b"`)
	mem.SetFault(func(op memdriver.Op, _, key string) error {
		if (op == memdriver.OpDelete || op == memdriver.OpDeleteKeys) && (key == "" || strings.HasPrefix(key, "journal/")) {
			return drivers.Errorf(drivers.ErrUnavailable, "deletes fail for the test")
		}
		return nil
	})
	e.Close() // folds everything; the trim's deletes fail
	mem.SetFault(nil)
	if left := journalKeys(t, mem); len(left) == 0 {
		t.Fatal("the trim's deletes failed, yet no journal object is left: the test tests nothing")
	}

	e2 := openFault(t, mem)
	if left := journalKeys(t, mem); len(left) > 0 {
		t.Fatalf("journal objects below journal-start left after a new start: %v", left)
	}
	got, err := e2.List(ctx, ref, index.ListOptions{Limit: 10, Echo: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{`"a"`, `"b"`}; !slices.Equal(bodiesOf(got), want) {
		t.Fatalf("%s holds %v, want %v", ref, bodiesOf(got), want)
	}
}

// TestJournalFoldAfterUnrecordedFold: a fold writes its body object and
// snapshot under number k, and the engine dies before the catalog entry
// records it. The next engine loads the queue from the fold before, and
// its own next fold takes the same k: the body object there (the dead
// engine's, with other bodies) must not stop it from folding, or the
// queue never leaves the journal and a clean stop leaves the journal
// behind. Found by TestModelJournal.
func TestJournalFoldAfterUnrecordedFold(t *testing.T) {
	mem := memdriver.New()
	clk := enginetest.NewClock()
	ref := index.QueueRef{Project: "p", Name: "q"}
	snapObjects := func() []string {
		var out []string
		ps, err := mem.ListContainers(ctx, &drivers.ListOptions{Prefix: "q-"})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range ps.Objects {
			p, err := mem.List(ctx, c.Key, &drivers.ListOptions{Prefix: "snap/"})
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range p.Objects {
				out = append(out, o.Key)
			}
		}
		return out
	}
	recorded := func() uint64 {
		var ent struct{ Snap uint64 }
		data, err := mem.Get(ctx, index.ControlContainer, "catalog/"+index.RefKey(ref), nil)
		if err == nil {
			err = json.Unmarshal(data, &ent)
		}
		if err != nil && !errors.Is(err, drivers.ErrNotFound) {
			t.Fatal(err)
		}
		return ent.Snap
	}
	dead := &enginetest.Crashable{Store: mem}
	e, err := index.Open(ctx, index.Options{Store: dead, Clock: clk, NoJanitor: true, SnapshotLogs: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	postOne(t, e, ref, `"a"`)
	postOne(t, e, ref, `"b"`) // the second batch: a fold, recorded
	enginetest.Eventually(t, "the first fold recorded", func() bool { return recorded() > 0 })
	mem.SetFault(func(op memdriver.Op, _, key string) error {
		if op == memdriver.OpPut && strings.HasPrefix(key, "catalog/") {
			return drivers.Errorf(drivers.ErrUnavailable, "the engine dies before it records the fold")
		}
		return nil
	})
	// c expires before the next fold: its body object holds d alone.
	if _, err := e.Post(ctx, ref, "c", []index.NewMessage{{Body: []byte(`"c"`), TTL: 60}}); err != nil {
		t.Fatal(err)
	}
	postOne(t, e, ref, `"d"`) // a fold whose record fails
	enginetest.Eventually(t, "the second fold's snapshot written", func() bool {
		return slices.ContainsFunc(snapObjects(), func(k string) bool { return k > fmt.Sprintf("snap/%020d", recorded()) })
	})
	dead.Crash()
	mem.SetFault(nil)

	e2, err := index.Open(ctx, index.Options{Store: mem, Clock: clk, NoJanitor: true, SnapshotLogs: 2})
	if err != nil {
		t.Fatal(err)
	}
	got, err := e2.List(ctx, ref, index.ListOptions{Limit: 10, Echo: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{`"a"`, `"b"`, `"c"`, `"d"`}; !slices.Equal(bodiesOf(got), want) {
		t.Fatalf("%s holds %v, want %v", ref, bodiesOf(got), want)
	}
	clk.Advance(2 * time.Minute) // c expires; a fold is due by time
	e2.Janitor()
	e2.Close()
	if left := journalKeys(t, mem); len(left) > 0 {
		t.Errorf("a clean Close left journal objects %v: the queue could not fold", left)
	}
	e3 := openFaultClock(t, mem, clk)
	got, err = e3.List(ctx, ref, index.ListOptions{Limit: 10, Echo: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{`"a"`, `"b"`, `"d"`}; !slices.Equal(bodiesOf(got), want) {
		t.Fatalf("after a clean stop %s holds %v, want %v", ref, bodiesOf(got), want)
	}
}
