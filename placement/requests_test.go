package placement

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/cistern-mq/cistern/drivers"
	"github.com/cistern-mq/cistern/drivers/memdriver"
	"github.com/cistern-mq/cistern/drivers/storemetrics"
	"github.com/cistern-mq/cistern/index"
	"github.com/cistern-mq/cistern/index/enginetest"
)

// counted is a router on one mem pool whose store requests are counted by
// storemetrics, the decorator the server uses for /metrics.
type counted struct {
	t       *testing.T
	reg     *prometheus.Registry
	clk     *enginetest.Clock
	store   drivers.Store
	engines []*index.Engine
}

func (c *counted) open() *Router {
	c.t.Helper()
	c.reg = prometheus.NewRegistry()
	m := storemetrics.NewMetrics(c.reg)
	c.engines = nil
	r, err := Open(ctx, Options{
		Pools: []PoolSpec{{Name: "a", URI: "mem:a", Weight: 100}},
		Open:  func(context.Context, PoolSpec) (drivers.Store, error) { return m.Wrap("a", c.store), nil },
		NewEngine: func(ctx context.Context, _ string, s drivers.Store) (*index.Engine, error) {
			e, err := index.Open(ctx, index.Options{Store: s, Clock: c.clk, Logger: zerolog.Nop(), NoJanitor: true})
			c.engines = append(c.engines, e)
			return e, err
		},
		Logger: zerolog.Nop(),
	})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { r.Close() })
	// Each engine lists leftover trash once as it starts, in the
	// background: let that pass before counting.
	enginetest.Eventually(c.t, "the engine's start-up trash listing", func() bool {
		_, v := c.requests()
		return v["list"] >= 1
	})
	return r
}

// requests returns how many store requests were made so far, by verb.
func (c *counted) requests() (total int, byVerb map[string]int) {
	c.t.Helper()
	fams, err := c.reg.Gather()
	if err != nil {
		c.t.Fatal(err)
	}
	byVerb = map[string]int{}
	for _, f := range fams {
		if f.GetName() != "cistern_store_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "verb" {
					byVerb[l.GetValue()] += int(m.GetCounter().GetValue())
					total += int(m.GetCounter().GetValue())
				}
			}
		}
	}
	return total, byVerb
}

// cost runs f and returns the store requests it made.
func (c *counted) cost(f func()) (int, map[string]int) {
	before, bv := c.requests()
	f()
	after, av := c.requests()
	for k := range av {
		av[k] -= bv[k]
		if av[k] == 0 {
			delete(av, k)
		}
	}
	return after - before, av
}

// What a queue costs in store requests when it is new, missing or cold
// (docs/performance.md has the table).
func TestStoreRequestsPerQueueTouch(t *testing.T) {
	c := &counted{t: t, clk: enginetest.NewClock(), store: memdriver.New()}
	r := c.open()
	missing := index.QueueRef{Project: "p", Name: "nobody"}
	n, verbs := c.cost(func() {
		if _, exists, err := r.Queue(ctx, missing); err != nil || exists {
			t.Fatalf("Queue(missing) = %v, %v", exists, err)
		}
	})
	t.Logf("first request to a missing queue: %d %v", n, verbs)
	if n > 2 {
		t.Errorf("first request to a missing queue cost %d store requests %v, want at most 2", n, verbs)
	}
	n, verbs = c.cost(func() { _, _, _ = r.Queue(ctx, missing) })
	if n != 0 {
		t.Errorf("a missing queue asked for again cost %d store requests %v, want 0", n, verbs)
	}

	// A new queue as the server makes one on its first post: its settings
	// are read, then the post creates it.
	ref := index.QueueRef{Project: "p", Name: "q"}
	n, verbs = c.cost(func() {
		if _, _, err := r.Queue(ctx, ref); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Post(ctx, ref, "c", []index.NewMessage{{Body: json.RawMessage(`"x"`), TTL: 3600}}); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("first post to a new queue: %d %v", n, verbs)
	// placement GET, catalog GET, placement PUT, container, catalog PUT,
	// and the log PUT that answering needs.
	if n > 6 {
		t.Errorf("first post to a new queue cost %d store requests %v, want at most 6", n, verbs)
	}

	// The queue goes idle: the janitor snapshots it, then unloads it.
	c.clk.Advance(2 * time.Minute)
	for _, e := range c.engines {
		e.Janitor()
	}
	enginetest.Eventually(t, "the idle queue to be unloaded", func() bool {
		for _, e := range c.engines {
			e.Janitor()
		}
		return r.Loaded() == 0
	})
	n, verbs = c.cost(func() {
		msgs, err := r.List(ctx, ref, index.ListOptions{Limit: 10, Echo: true})
		if err != nil || len(msgs) != 1 {
			t.Fatalf("List = %d, %v", len(msgs), err)
		}
	})
	t.Logf("first request to an idle queue: %d %v", n, verbs)
	// catalog GET, snapshot GET, and the ranged GET of the body that
	// answering needs (here in the body cache still); never a listing,
	// and no probe for logs after a snapshot the journal's fold wrote.
	if n > 3 || verbs["list"] > 0 {
		t.Errorf("first request to an idle queue cost %d store requests %v, want at most 3 and no listing", n, verbs)
	}

	// After a restart the placement is read once more.
	r.Close()
	r = c.open()
	n, verbs = c.cost(func() {
		if _, err := r.List(ctx, ref, index.ListOptions{Limit: 10, Echo: true}); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("first request to a queue after a restart: %d %v", n, verbs)
	if n > 4 || verbs["list"] > 0 {
		t.Errorf("first request after a restart cost %d store requests %v, want at most 4 and no listing", n, verbs)
	}
}
