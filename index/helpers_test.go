package index

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cistern-mq/cistern/drivers"
	"github.com/cistern-mq/cistern/drivers/memdriver"
)

// fakeClock is a Clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_800_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func openEngine(t testing.TB, s drivers.Store, clk Clock, mod func(*Options)) *Engine {
	t.Helper()
	o := Options{Store: s, Clock: clk, Logger: zerolog.Nop(), NoJanitor: true}
	if mod != nil {
		mod(&o)
	}
	e, err := Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func bodies(n int, prefix string) []NewMessage {
	out := make([]NewMessage, n)
	for i := range out {
		b, _ := json.Marshal(map[string]any{"n": i, "p": prefix})
		out[i] = NewMessage{Body: b, TTL: 300}
	}
	return out
}

func newMem() *memdriver.Store { return memdriver.New() }

// openRecords is how many records wait in q's open batch.
func openRecords(e *Engine, ref QueueRef) int {
	e.mu.Lock()
	q := e.queues[ref]
	e.mu.Unlock()
	if q == nil {
		return 0
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.open == nil {
		return 0
	}
	return int(q.open.w.count)
}
