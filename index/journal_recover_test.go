package index_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/cistern-mq/cistern/drivers"
	"github.com/cistern-mq/cistern/drivers/memdriver"
	"github.com/cistern-mq/cistern/index"
	"github.com/cistern-mq/cistern/index/enginetest"
)

// Recovery of the node's journal at Open, in the two cases
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
