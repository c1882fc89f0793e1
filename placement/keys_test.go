package placement

import (
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
