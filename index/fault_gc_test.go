package index_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cistern-mq/cistern/drivers/drivertest"
	"github.com/cistern-mq/cistern/drivers/faultstore"
	"github.com/cistern-mq/cistern/drivers/memdriver"
	"github.com/cistern-mq/cistern/index"
	"github.com/cistern-mq/cistern/index/enginetest"
	"github.com/rs/zerolog"
)

// TestFaultCollectKeepsBodiesOfFailedDeletes: garbage collection must
// judge a log object by what the store holds, not by changes still on
// their way to it. A delete applied in memory while a collection lists the
// logs, and whose own write then fails, must not cost the message its
// body: the message is still live in the store.
func TestFaultCollectKeepsBodiesOfFailedDeletes(t *testing.T) {
	base := memdriver.New()
	// Collections list the logs: the first after snapshot 8 (keeping logs
	// after 4), the second after snapshot 12 (keeping logs after 8). The
	// second waits in its listing until the delete of X is applied in
	// memory. Counting listings, not timing them, picks it: the first runs
	// in the background and may end late.
	entered, unblock := make(chan struct{}, 1), make(chan struct{})
	var listings atomic.Int64
	f := faultstore.New(base, faultstore.Options{Sleep: func(ctx context.Context, _ time.Duration) error {
		if listings.Add(1) == 2 {
			entered <- struct{}{}
			<-unblock
		}
		return nil
	}})
	f.Add(faultstore.Rule{Verbs: []faultstore.Verb{faultstore.List}, KeyPrefix: "log/", Effect: faultstore.Delay})
	// Per-queue logs: the journal's folds snapshot at the same moment.
	e := openFaultWith(t, index.Options{Store: f, NoJournal: true}) // a snapshot every 4 logs
	ref := index.QueueRef{Project: "p", Name: "gc"}
	x := postOne(t, e, ref, `"X"`) // alone in log 1
	for i := range 7 {
		postOne(t, e, ref, fmt.Sprintf(`"filler %d"`, i)) // logs 2-8: snapshots 4 and 8
	}
	for i := range 4 {
		postOne(t, e, ref, fmt.Sprintf(`"more %d"`, i))
	}
	<-entered
	f.Add(faultstore.Rule{Verbs: []faultstore.Verb{faultstore.Put}, KeyPrefix: "log/", Count: 4}) // the delete's write fails, retries included
	done := make(chan error, 1)
	go func() { done <- e.DeleteMessage(ctx, ref, x, "") }()
	drivertest.Eventually(t, "the delete to be applied in memory", func() bool {
		st, err := e.Stats(ctx, ref)
		return err == nil && st.Total == 11
	})
	close(unblock)
	if err := <-done; err == nil {
		t.Fatal("the delete was acknowledged although its write failed")
	}
	got, err := e.GetMessages(ctx, ref, []string{x})
	if err != nil || len(got) != 1 {
		t.Fatalf("X after its delete failed: %v, %v; want it live", got, err)
	}
	if string(got[0].Body) != `"X"` {
		t.Errorf("X is live but its body reads %q: its log object was collected", got[0].Body)
	}
	e2 := openFaultWith(t, index.Options{Store: base, NoJournal: true})
	got, err = e2.GetMessages(ctx, ref, []string{x})
	if err != nil || len(got) != 1 || string(got[0].Body) != `"X"` {
		t.Errorf("after reopen X = %q, %v", bodiesOf(got), err)
	}
}

// TestFailedDeleteKeepsQueueAtRestart: a delete whose catalog removal
// fails leaves a trash entry behind; the next start must not remove the
// objects of a queue its catalog still names (it used to, and the queue
// came back empty, or damaged).
func TestFailedDeleteKeepsQueueAtRestart(t *testing.T) {
	base := memdriver.New()
	fs := faultstore.New(base, faultstore.Options{})
	clk := enginetest.NewClock()
	e, err := index.Open(ctx, index.Options{Store: fs, Clock: clk, Logger: zerolog.Nop(), NoJanitor: true})
	if err != nil {
		t.Fatal(err)
	}
	ref := index.QueueRef{Project: "p", Name: "kept"}
	if _, err := e.Post(ctx, ref, "c", []index.NewMessage{{Body: json.RawMessage(`"still here"`), TTL: 3600}}); err != nil {
		t.Fatal(err)
	}
	fs.Add(faultstore.Rule{Name: "catalog", Verbs: []faultstore.Verb{faultstore.Delete}, KeyPrefix: "catalog/"})
	if err := e.DeleteQueue(ctx, ref); err == nil {
		t.Fatal("delete succeeded though the catalog entry could not be removed")
	}
	e.Close()
	fs.Clear()

	e2, err := index.Open(ctx, index.Options{Store: base, Clock: clk, Logger: zerolog.Nop(), NoJanitor: true})
	if err != nil {
		t.Fatal(err)
	}
	e2.Close() // waits for the trash to be emptied
	e3, err := index.Open(ctx, index.Options{Store: base, Clock: clk, Logger: zerolog.Nop(), NoJanitor: true})
	if err != nil {
		t.Fatal(err)
	}
	defer e3.Close()
	msgs, err := e3.List(ctx, ref, index.ListOptions{Limit: 10, Echo: true})
	if err != nil || len(msgs) != 1 || string(msgs[0].Body) != `"still here"` {
		t.Fatalf("queue whose delete failed, after a restart: %v, %v", msgs, err)
	}
}
