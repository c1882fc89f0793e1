package index

import (
	"context"
	"testing"
	"time"

	"github.com/cistern-mq/cistern/drivers/drivertest"
)

// TestDepthStaysAfterUnload: a queue unloaded for idleness still reports
// what it holds (it fell to zero before), until its messages expire; a
// deleted queue is no longer reported.
func TestDepthStaysAfterUnload(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock()
	e := openEngine(t, newMem(), clk, func(o *Options) { o.IdleTimeout = time.Minute })
	ref := QueueRef{Project: "p", Name: "quiet"}
	if _, err := e.Post(ctx, ref, "c", bodies(4, "x")); err != nil { // ttl 300 s
		t.Fatal(err)
	}
	created := clk.Now()
	clk.Advance(2 * time.Minute)
	unload := func() {
		// The janitor's first pass may write a snapshot that is due; the
		// queue unloads on a pass after it.
		drivertest.Eventually(t, "the idle queue to unload", func() bool { e.Janitor(); return e.Loaded() == 0 })
	}
	unload()
	find := func() *QueueDepth {
		for _, d := range e.QueueDepths() {
			if d.Ref == ref {
				return &d
			}
		}
		return nil
	}
	d := find()
	if d == nil || d.Loaded || d.Messages != 4 || !d.Oldest.Equal(created) {
		t.Fatalf("unloaded queue reports %+v, want 4 messages created at %v", d, created)
	}
	// Loaded again, it reports its index; unloaded again, the same.
	if st, err := e.Stats(ctx, ref); err != nil || st.Total != 4 {
		t.Fatalf("stats: %+v %v", st, err)
	}
	if d := find(); d == nil || !d.Loaded || d.Messages != 4 {
		t.Fatalf("loaded queue reports %+v", d)
	}
	clk.Advance(2 * time.Minute)
	unload()
	clk.Advance(2 * time.Minute) // past the messages' ttl
	if d := find(); d == nil || d.Messages != 0 || !d.Oldest.IsZero() {
		t.Fatalf("after every message expired: %+v", d)
	}
	if err := e.DeleteQueue(ctx, ref); err != nil {
		t.Fatal(err)
	}
	if d := find(); d != nil {
		t.Fatalf("deleted queue still reported: %+v", d)
	}
}
