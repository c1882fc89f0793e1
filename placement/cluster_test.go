package placement

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/rs/zerolog"

	"github.com/cistern-mq/cistern/drivers"
	"github.com/cistern-mq/cistern/index"
)

func clusterRouter(t *testing.T, w *world, pools ...PoolSpec) *Router {
	t.Helper()
	r, err := Open(ctx, Options{
		Pools: pools,
		Open:  w.open,
		NewEngine: func(ctx context.Context, name string, s drivers.Store) (*index.Engine, error) {
			return index.Open(ctx, index.Options{Store: s, Logger: zerolog.Nop()})
		},
		Logger:  zerolog.Nop(),
		Cluster: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestClusterModeRefusesRegistryChanges(t *testing.T) {
	w := newWorld(t)
	a, b := w.memPool("a", 100), w.memPool("b", 100)
	r := clusterRouter(t, w, a)
	if _, err := r.PutPool(ctx, b); !errors.Is(err, ErrClusterMode) {
		t.Fatalf("PutPool in cluster mode: %v", err)
	}
	if _, err := r.PutFlavor(ctx, FlavorSpec{Name: "gold", Pools: []string{"a"}}); !errors.Is(err, ErrClusterMode) {
		t.Fatalf("PutFlavor in cluster mode: %v", err)
	}
	if err := r.DeletePool(ctx, "a"); !errors.Is(err, ErrClusterMode) {
		t.Fatalf("DeletePool in cluster mode: %v", err)
	}
	if _, err := r.Migrate(nil, ""); !errors.Is(err, ErrClusterMode) {
		t.Fatalf("Migrate in cluster mode: %v", err)
	}
	if err := r.MigrateQueue(ctx, ref(1), "a"); !errors.Is(err, ErrClusterMode) {
		t.Fatalf("MigrateQueue in cluster mode: %v", err)
	}
}

func TestReleaseUnloadsAndForgets(t *testing.T) {
	w := newWorld(t)
	r := w.router(w.memPool("a", 100), w.memPool("b", 100))
	for i := range 6 {
		if _, err := r.Post(ctx, ref(i), "c", []index.NewMessage{{Body: json.RawMessage(`1`), TTL: 3600}}); err != nil {
			t.Fatal(err)
		}
	}
	if r.Loaded() != 6 {
		t.Fatalf("%d loaded", r.Loaded())
	}
	odd := func(q index.QueueRef) bool { return q == ref(1) || q == ref(3) || q == ref(5) }
	if err := r.Release(ctx, odd); err != nil {
		t.Fatal(err)
	}
	if r.Loaded() != 3 {
		t.Fatalf("%d loaded after releasing three", r.Loaded())
	}
	for _, q := range r.cache.Keys() {
		if odd(q) {
			t.Fatalf("placement of %s still cached", q)
		}
	}
	// Released queues load again, from the store, with what they held.
	msgs, err := r.List(ctx, ref(3), index.ListOptions{Limit: 10, Echo: true})
	if err != nil || len(msgs) != 1 {
		t.Fatalf("released queue: %v, %v", msgs, err)
	}
}

// TestBindCluster: a store remembers the cluster that served it; another
// cluster (another etcd, or one whose data was lost) is refused.
func TestBindCluster(t *testing.T) {
	w := newWorld(t)
	a := w.memPool("a", 100)
	r := clusterRouter(t, w, a)
	if _, ok := r.BoundCluster(ctx); ok {
		t.Fatal("a fresh store is bound")
	}
	if err := r.BindCluster(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if err := r.BindCluster(ctx, "c1"); err != nil {
		t.Fatalf("the same cluster again: %v", err)
	}
	if err := r.BindCluster(ctx, "c2"); !errors.Is(err, ErrClusterMismatch) {
		t.Fatalf("another cluster: %v, want ErrClusterMismatch", err)
	}
	if id, ok := r.BoundCluster(ctx); !ok || id != "c1" {
		t.Fatalf("bound to %q %v", id, ok)
	}
}
