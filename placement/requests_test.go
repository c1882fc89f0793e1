package placement

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
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

// counted is a router on mem pools whose store requests are counted by
// storemetrics, the decorator the server uses for /metrics.
type counted struct {
	t       *testing.T
	reg     *prometheus.Registry
	clk     *enginetest.Clock
	pools   []PoolSpec
	stores  map[string]drivers.Store // by pool name
	engines []*index.Engine
}

// listSpy counts listings by container and prefix, so that a test can wait
// for the ones made in the background at start.
type listSpy struct {
	mu   sync.Mutex
	seen map[string]int // "<container>/<prefix>"
}

type spiedStore struct {
	drivers.Store
	spy *listSpy
}

func (s spiedStore) List(ctx context.Context, container string, o *drivers.ListOptions) (drivers.Page, error) {
	prefix := ""
	if o != nil {
		prefix = o.Prefix
	}
	s.spy.mu.Lock()
	s.spy.seen[container+"/"+prefix]++
	s.spy.mu.Unlock()
	return s.Store.List(ctx, container, o)
}

func (l *listSpy) count(key string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seen[key]
}

func newCounted(t *testing.T, pools ...string) *counted {
	c := &counted{t: t, clk: enginetest.NewClock(), stores: map[string]drivers.Store{}}
	for _, name := range pools {
		c.pools = append(c.pools, PoolSpec{Name: name, URI: "mem:" + name, Weight: 100})
		c.stores[name] = memdriver.New()
	}
	return c
}

// open opens the router and waits for what it and its engines list in
// the background as they start.
func (c *counted) open() *Router {
	c.t.Helper()
	c.reg = prometheus.NewRegistry()
	m := storemetrics.NewMetrics(c.reg)
	c.engines = nil
	spy := &listSpy{seen: map[string]int{}}
	r, err := Open(ctx, Options{
		Pools: c.pools,
		Open: func(_ context.Context, s PoolSpec) (drivers.Store, error) {
			return m.Wrap(s.Name, spiedStore{c.stores[s.Name], spy}), nil
		},
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
	// Each engine lists leftover trash in the background, and the router
	// interrupted migrations: let that pass before counting.
	enginetest.Eventually(c.t, "the start-up listings", func() bool {
		return spy.count(index.ControlContainer+"/trash/") >= len(c.pools) &&
			spy.count(index.ControlContainer+"/migrating/") >= 1
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

// What a queue costs in store requests when it is new, missing or cold,
// on the control pool (docs/performance.md has the table).
func TestStoreRequestsPerQueueTouch(t *testing.T) {
	c := newCounted(t, "a")
	r := c.open()
	missing := index.QueueRef{Project: "p", Name: "nobody"}
	n, verbs := c.cost(func() {
		if _, exists, err := r.Queue(ctx, missing); err != nil || exists {
			t.Fatalf("Queue(missing) = %v, %v", exists, err)
		}
	})
	t.Logf("first request to a missing queue: %d %v", n, verbs)
	// The catalog GET; no placement record is read while no queue lives
	// on another pool.
	if n > 1 {
		t.Errorf("first request to a missing queue cost %d store requests %v, want at most 1", n, verbs)
	}
	n, verbs = c.cost(func() { _, _, _ = r.Queue(ctx, missing) })
	if n != 0 {
		t.Errorf("a missing queue asked for again cost %d store requests %v, want 0", n, verbs)
	}

	// A queue made by PUT: the catalog GET that finds it missing, then
	// its catalog entry; its container comes with its first fold.
	made := index.QueueRef{Project: "p", Name: "made"}
	n, verbs = c.cost(func() {
		if created, err := r.CreateQueue(ctx, made, nil); err != nil || !created {
			t.Fatalf("CreateQueue = %v, %v", created, err)
		}
	})
	t.Logf("creating a queue: %d %v", n, verbs)
	if n > 2 {
		t.Errorf("creating a queue cost %d store requests %v, want at most 2", n, verbs)
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
	// catalog GET, catalog PUT, and the journal PUT that answering needs.
	if n > 3 {
		t.Errorf("first post to a new queue cost %d store requests %v, want at most 3", n, verbs)
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

	// After a restart: the same, and the placement marker read at start.
	r.Close()
	r = c.open()
	n, verbs = c.cost(func() {
		if _, err := r.List(ctx, ref, index.ListOptions{Limit: 10, Echo: true}); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("first request to a queue after a restart: %d %v", n, verbs)
	if n > 3 || verbs["list"] > 0 {
		t.Errorf("first request after a restart cost %d store requests %v, want at most 3 and no listing", n, verbs)
	}
	// A queue made and never written: its catalog entry says all.
	n, verbs = c.cost(func() {
		if _, exists, err := r.Queue(ctx, made); err != nil || !exists {
			t.Fatalf("Queue(made) = %v, %v", exists, err)
		}
	})
	t.Logf("first request to an empty queue after a restart: %d %v", n, verbs)
	if n > 1 {
		t.Errorf("first request to an empty queue after a restart cost %d store requests %v, want 1", n, verbs)
	}
}

// With two pools, a queue the ring puts on the second one has a placement
// record: it costs one more request to make and, once the store holds such
// a record, every queue not in the router's cache costs one more GET.
func TestStoreRequestsPerQueueTouchTwoPools(t *testing.T) {
	c := newCounted(t, "a", "b")
	r := c.open()
	var onA, onB index.QueueRef
	for i := 0; onA.Name == "" || onB.Name == ""; i++ {
		ref := index.QueueRef{Project: "p", Name: fmt.Sprintf("q%d", i)}
		p, err := r.ringPool(ref, "")
		if err != nil {
			t.Fatal(err)
		}
		if p == "a" && onA.Name == "" {
			onA = ref
		} else if p == "b" && onB.Name == "" {
			onB = ref
		}
	}
	create := func(ref index.QueueRef) (int, map[string]int) {
		return c.cost(func() {
			if created, err := r.CreateQueue(ctx, ref, nil); err != nil || !created {
				t.Fatalf("CreateQueue(%s) = %v, %v", ref, created, err)
			}
		})
	}
	n, verbs := create(onA)
	t.Logf("creating a queue on the control pool: %d %v", n, verbs)
	if n > 2 {
		t.Errorf("creating a queue on the control pool cost %d %v, want at most 2", n, verbs)
	}
	n, verbs = create(onB)
	t.Logf("creating the first queue on another pool: %d %v", n, verbs)
	// control catalog GET, marker PUT, record PUT, catalog GET, catalog
	// PUT.
	if n > 5 {
		t.Errorf("creating the first queue on another pool cost %d %v, want at most 5", n, verbs)
	}
	if !r.spread.Load() {
		t.Fatal("a queue placed on another pool did not mark the store")
	}
	for _, ref := range []index.QueueRef{onA, onB} {
		if _, err := r.Post(ctx, ref, "c", []index.NewMessage{{Body: json.RawMessage(`"x"`), TTL: 3600}}); err != nil {
			t.Fatal(err)
		}
	}
	// Both are found after a restart (the stop folded them): the record
	// read, then the catalog entry and the snapshot.
	r.Close()
	r = c.open()
	for _, ref := range []index.QueueRef{onA, onB} {
		n, verbs := c.cost(func() {
			if _, exists, err := r.Queue(ctx, ref); err != nil || !exists {
				t.Fatalf("Queue(%s) after a restart = %v, %v", ref, exists, err)
			}
		})
		t.Logf("first request to %s after a restart: %d %v", ref, n, verbs)
		if n > 3 || verbs["list"] > 0 {
			t.Errorf("first request to %s after a restart cost %d %v, want at most 3 and no listing", ref, n, verbs)
		}
	}
	missing := index.QueueRef{Project: "p", Name: "nobody"}
	n, verbs = c.cost(func() {
		if _, exists, err := r.Queue(ctx, missing); err != nil || exists {
			t.Fatalf("Queue(missing) = %v, %v", exists, err)
		}
	})
	t.Logf("a missing queue once records exist: %d %v", n, verbs)
	if n > 2 {
		t.Errorf("a missing queue cost %d %v, want at most 2", n, verbs)
	}
}
