package index

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"

	"github.com/cistern-mq/cistern/drivers"
	"github.com/cistern-mq/cistern/drivers/drivertest"
)

// flakyPoster fails its first posts, as a dead-letter queue whose owner is
// away does, then posts to the engine.
type flakyPoster struct {
	e     *Engine
	fails atomic.Int32
}

func (p *flakyPoster) PostMoved(ctx context.Context, ref QueueRef, client string, msg NewMessage, origin string) (string, error) {
	if p.fails.Add(-1) >= 0 {
		return "", drivers.ErrUnavailable
	}
	return p.e.PostMoved(ctx, ref, client, msg, origin)
}

// TestJanitorRetriesDeadLetterMoves: a move that failed is tried again by
// the janitor, not only when the queue next loads.
func TestJanitorRetriesDeadLetterMoves(t *testing.T) {
	ctx := context.Background()
	e := openEngine(t, newMem(), newFakeClock(), nil)
	p := &flakyPoster{e: e}
	p.fails.Store(1)
	e.SetDeadLetters(p)
	src, dlq := QueueRef{Project: "p", Name: "src"}, QueueRef{Project: "p", Name: "dlq"}
	if _, err := e.CreateQueue(ctx, dlq, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.CreateQueue(ctx, src, json.RawMessage(`{"_max_claim_count":1,"_dead_letter_queue":"dlq"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Post(ctx, src, "c", bodies(1, "bad")); err != nil {
		t.Fatal(err)
	}
	c, err := e.Claim(ctx, src, ClaimOptions{TTL: 60, Grace: 60, Limit: 1})
	if err != nil || c == nil {
		t.Fatalf("claim: %+v %v", c, err)
	}
	if err := e.ReleaseClaim(ctx, src, c.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Claim(ctx, src, ClaimOptions{TTL: 60, Grace: 60, Limit: 1}); err != nil {
		t.Fatal(err)
	}
	drivertest.Eventually(t, "the first move to fail", func() bool { return p.fails.Load() <= 0 })
	drivertest.Eventually(t, "the message to reach the dead-letter queue after a janitor pass", func() bool {
		e.Janitor()
		msgs, err := e.List(ctx, dlq, ListOptions{Limit: 10, Echo: true})
		return err == nil && len(msgs) == 1
	})
}

// TestClaimAnswersOnceMoved: a claim that moves a message to its
// dead-letter queue answers once the message is there.
func TestClaimAnswersOnceMoved(t *testing.T) {
	ctx := context.Background()
	e := openEngine(t, newMem(), newFakeClock(), nil)
	src, dlq := QueueRef{Project: "p", Name: "src"}, QueueRef{Project: "p", Name: "dlq"}
	if _, err := e.CreateQueue(ctx, src, json.RawMessage(`{"_max_claim_count":1,"_dead_letter_queue":"dlq"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Post(ctx, src, "c", bodies(1, "bad")); err != nil {
		t.Fatal(err)
	}
	c, err := e.Claim(ctx, src, ClaimOptions{TTL: 60, Grace: 60, Limit: 1})
	if err != nil || c == nil {
		t.Fatalf("claim: %+v %v", c, err)
	}
	if err := e.ReleaseClaim(ctx, src, c.ID); err != nil {
		t.Fatal(err)
	}
	if c, err := e.Claim(ctx, src, ClaimOptions{TTL: 60, Grace: 60, Limit: 1}); err != nil || c != nil {
		t.Fatalf("second claim: %+v %v", c, err)
	}
	st, err := e.Stats(ctx, dlq)
	if err != nil || st.Total != 1 {
		t.Fatalf("dead-letter queue right after the claim: %+v %v", st, err)
	}
	if st, _ := e.Stats(ctx, src); st.Total != 0 {
		t.Fatalf("source queue still holds %d", st.Total)
	}
}
