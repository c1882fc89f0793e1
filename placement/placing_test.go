package placement

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/cistern-mq/cistern/index"
)

func post(t *testing.T, r *Router, q index.QueueRef, body string) {
	t.Helper()
	if _, err := r.Post(ctx, q, "c", []index.NewMessage{{Body: json.RawMessage(`"` + body + `"`), TTL: 3600}}); err != nil {
		t.Fatalf("post to %s: %v", q, err)
	}
}

// onPool returns a queue name the ring puts on pool, for a router whose
// ring has it.
func onPool(t *testing.T, r *Router, pool, prefix string) index.QueueRef {
	t.Helper()
	for i := range 10_000 {
		q := index.QueueRef{Project: "p", Name: fmt.Sprintf("%s%d", prefix, i)}
		if p, err := r.ringPool(q, ""); err == nil && p == pool {
			return q
		}
	}
	t.Fatalf("no queue name lands on %s", pool)
	return index.QueueRef{}
}

// A store placed by an older Cistern has a record for every queue and no
// marker: it is marked at start, and its records are read, so a queue
// recorded on another pool is found there.
func TestPlacementRecordsOfOlderStores(t *testing.T) {
	w := newWorld(t)
	a, b := w.memPool("a", 100), w.memPool("b", 100)
	r := w.router(a, b)
	q := onPool(t, r, "b", "q")
	post(t, r, q, "x")
	r.Close()
	control := w.stores[a.URI]
	// What an older Cistern left: no marker, and records for every queue
	// (the control pool's queues included).
	if err := control.Delete(ctx, controlContainer, spreadKey); err != nil {
		t.Fatal(err)
	}
	if err := putJSON(ctx, control, placementKey(index.QueueRef{Project: "p", Name: "gone"}), placementEntry{Pool: "a"}); err != nil {
		t.Fatal(err)
	}
	r = w.router(a, b)
	if !r.spread.Load() {
		t.Fatal("a store with placement records and no marker was not marked")
	}
	if msgs, err := r.List(ctx, q, index.ListOptions{Limit: 10, Echo: true}); err != nil || len(msgs) != 1 {
		t.Fatalf("list of a queue recorded on b: %d messages, %v", len(msgs), err)
	}
	if data, err := control.Get(ctx, controlContainer, spreadKey, nil); err != nil || string(data) != `{"elsewhere":true}` {
		t.Fatalf("marker = %q, %v", data, err)
	}
}

// A store whose marker is damaged is refused rather than read as holding no
// records (which would route every queue of another pool to the control
// pool, where it does not exist).
func TestDamagedMarkerRefused(t *testing.T) {
	w := newWorld(t)
	a := w.memPool("a", 100)
	r := w.router(a)
	r.Close()
	if err := w.stores[a.URI].Put(ctx, controlContainer, spreadKey, []byte(`{}`), nil); err != nil {
		t.Fatal(err)
	}
	_, err := Open(ctx, Options{Pools: []PoolSpec{a}, Open: w.open, NewEngine: r.opts.NewEngine, Logger: r.log})
	if err == nil {
		t.Fatal("a damaged placement marker was accepted")
	}
}

// A queue only the control pool holds has no record; one placed elsewhere
// has one, and deleting it deletes its record.
func TestRecordsOnlyForOtherPools(t *testing.T) {
	w := newWorld(t)
	a, b := w.memPool("a", 100), w.memPool("b", 100)
	r := w.router(a, b)
	qa, qb := onPool(t, r, "a", "q"), onPool(t, r, "b", "q")
	post(t, r, qa, "x")
	if r.spread.Load() {
		t.Fatal("a queue on the control pool marked the store")
	}
	post(t, r, qb, "y")
	control := w.stores[a.URI]
	if _, err := control.Get(ctx, controlContainer, placementKey(qa), nil); err == nil {
		t.Error("a queue of the control pool has a placement record")
	}
	if p, err := r.readRecord(ctx, qb); err != nil || p != "b" {
		t.Fatalf("record of a queue on b = %q, %v", p, err)
	}
	if err := r.DeleteQueue(ctx, qb); err != nil {
		t.Fatal(err)
	}
	if p, err := r.readRecord(ctx, qb); err != nil || p != "" {
		t.Fatalf("record after the delete = %q, %v", p, err)
	}
}

// A queue migrated away from the control pool and deleted there can be
// made again: the control pool's memory of the move does not send it on.
func TestRemadeAfterMigrationAway(t *testing.T) {
	w := newWorld(t)
	a, b := w.memPool("a", 100), w.memPool("b", 100)
	r := w.router(a, b)
	q := onPool(t, r, "a", "q")
	post(t, r, q, "x")
	if err := r.MigrateQueue(ctx, q, "b"); err != nil {
		t.Fatal(err)
	}
	if p, err := r.readRecord(ctx, q); err != nil || p != "b" {
		t.Fatalf("record after the migration = %q, %v", p, err)
	}
	if err := r.DeleteQueue(ctx, q); err != nil {
		t.Fatal(err)
	}
	post(t, r, q, "again")
	loc, exists, err := r.Locate(ctx, q)
	if err != nil || !exists || loc.Pool != "a" {
		t.Fatalf("Locate after making it again = %+v, %v, %v; want pool a", loc, exists, err)
	}
	// And back from b to the control pool: the record names it.
	if err := r.MigrateQueue(ctx, q, "b"); err != nil {
		t.Fatal(err)
	}
	if err := r.MigrateQueue(ctx, q, "a"); err != nil {
		t.Fatal(err)
	}
	r.Close()
	r = w.router(a, b)
	msgs, err := r.List(ctx, q, index.ListOptions{Limit: 10, Echo: true})
	if err != nil || len(msgs) != 1 || string(msgs[0].Body) != `"again"` {
		t.Fatalf("after moving there and back: %v, %v", msgs, err)
	}
}

// Requests that make the same new queue at once, while the ring changes
// under them, make it on one pool: every acknowledged post is in it.
func TestConcurrentMakersAgree(t *testing.T) {
	for round := range 20 {
		w := newWorld(t)
		a, b := w.memPool("a", 100), w.memPool("b", 100)
		r := w.router(a, b)
		q := index.QueueRef{Project: "p", Name: fmt.Sprintf("new%d", round)}
		var wg sync.WaitGroup
		var mu sync.Mutex
		acked := 0
		for i := range 8 {
			wg.Go(func() {
				if _, err := r.Post(ctx, q, "c", []index.NewMessage{{Body: json.RawMessage(fmt.Sprint(i)), TTL: 3600}}); err == nil {
					mu.Lock()
					acked++
					mu.Unlock()
				}
			})
		}
		// Shift the ring's weights while they run.
		wg.Go(func() {
			weight := int64(1)
			if round%2 == 0 {
				weight = 1000
			}
			if _, err := r.PatchPool(ctx, "b", PoolPatch{Weight: &weight}); err != nil {
				t.Error(err)
			}
		})
		wg.Wait()
		holders := 0
		total := 0
		for _, name := range []string{"a", "b"} {
			e, _ := r.engine(name)
			if _, exists, err := e.Queue(ctx, q); err != nil {
				t.Fatal(err)
			} else if exists {
				holders++
				msgs, err := e.List(ctx, q, index.ListOptions{Limit: 20, Echo: true})
				if err != nil {
					t.Fatal(err)
				}
				total += len(msgs)
			}
		}
		if holders != 1 || total != acked {
			t.Fatalf("round %d: the queue is on %d pools with %d messages; %d posts acknowledged", round, holders, total, acked)
		}
	}
}
