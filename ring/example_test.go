package ring_test

import (
	"fmt"

	"github.com/cistern-mq/cistern/ring"
)

// A deployment builds its first ring, saves it, and later rebalances from the
// saved one when a pool is added.
func Example() {
	b, _ := ring.NewBuilder(nil, &ring.Options{Seed: 1})
	b.SetPool(ring.Pool{ID: "local", Weight: 1})
	b.SetPool(ring.Pool{ID: "swift-a", Weight: 2})
	b.SetPool(ring.Pool{ID: "s3-gold", Weight: 1, Group: "gold"})
	first, _ := b.Rebalance()
	saved, _ := first.MarshalBinary() // e.g. into the control container

	var prev ring.Set
	if err := prev.UnmarshalBinary(saved); err != nil {
		panic(err)
	}
	b, _ = ring.NewBuilder(&prev, &ring.Options{Seed: 1})
	for _, p := range prev.Pools() {
		b.SetPool(p)
	}
	b.SetPool(ring.Pool{ID: "swift-b", Weight: 1})
	next, _ := b.Rebalance()

	moved := next.Ring("").Moved(prev.Ring(""))
	fmt.Printf("version %d, moved %.0f%% of group \"\"\n", next.Version(), 100*float64(moved)/65536)
	pool, _ := next.LookupIn("gold", "project-1", "orders")
	fmt.Println("gold queue on", pool)
	_, err := next.LookupIn("silver", "project-1", "orders")
	fmt.Println(err)
	// Output:
	// version 2, moved 25% of group ""
	// gold queue on s3-gold
	// ring: no pool in group "silver"
}
