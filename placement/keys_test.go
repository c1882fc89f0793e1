package placement

import (
	"errors"
	"testing"

	"github.com/cistern-mq/cistern/index"
)

// Placement's records are on-store format too: these keys may only change
// with a conversion.
func TestKeysAreUnchanged(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{controlContainer, "cistern-control"},
		{placementKey(index.QueueRef{Project: "p1", Name: "orders"}), "placement/p1/orders"},
		{placementKey(index.QueueRef{Project: "", Name: "q"}), "placement/%/q"},
		{placementKey(index.QueueRef{Project: "a/b%c", Name: "x"}), "placement/a%2Fb%25c/x"},
		{migratingKey(index.QueueRef{Project: "a/b", Name: "q"}), "migrating/a%2Fb/q"},
		{poolsPrefix + "fast", "pools/fast"},
		{flavorsPrefix + "gold", "flavors/gold"},
		{ringKey, "ring"},
	} {
		if c.got != c.want {
			t.Errorf("key %q, want %q", c.got, c.want)
		}
	}
}

// A damaged placement record is reported, not read as "no placement": that
// sent requests for an existing queue to whichever pool the ring picks, where
// the queue does not exist.
func TestCorruptPlacementRefused(t *testing.T) {
	w := newWorld(t)
	a := w.memPool("a", 100)
	r := w.router(a)
	q := index.QueueRef{Project: "p", Name: "q"}
	if _, err := r.CreateQueue(ctx, q, nil); err != nil {
		t.Fatal(err)
	}
	if err := r.control.Put(ctx, controlContainer, placementKey(q), []byte(`{"pool":""}`), nil); err != nil {
		t.Fatal(err)
	}
	// Records are read once the marker says they may exist.
	if err := r.markSpread(ctx); err != nil {
		t.Fatal(err)
	}
	r.cache.Purge()
	if _, _, err := r.Queue(ctx, q); !errors.Is(err, errCorrupt) {
		t.Fatalf("queue with a damaged placement: %v, want errCorrupt", err)
	}
}
