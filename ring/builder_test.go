package ring_test

import (
	"bytes"
	"fmt"
	"math"
	"math/big"
	"slices"
	"testing"

	"pgregory.net/rapid"

	"github.com/cistern-mq/cistern/ring"
)

// assertBalanced checks that every pool of r holds its exact weight share of
// the partitions, rounded down or up, and is within pct percent of it.
func assertBalanced(t tb, r *ring.Ring, pct float64) {
	t.Helper()
	total := new(big.Rat)
	for _, p := range r.Pools() {
		total.Add(total, new(big.Rat).SetFloat64(p.Weight))
	}
	n := int64(1) << r.PartPower()
	for i, c := range r.Counts() {
		p := r.Pools()[i]
		share := new(big.Rat).SetFloat64(p.Weight)
		share.Mul(share, big.NewRat(n, 1)).Quo(share, total)
		d := new(big.Rat).Sub(big.NewRat(int64(c), 1), share)
		if new(big.Rat).Abs(d).Cmp(big.NewRat(1, 1)) >= 0 {
			t.Fatalf("group %q: pool %q holds %d partitions, share %s: not its share rounded", r.Group(), p.ID, c, share.FloatString(3))
		}
		f, _ := share.Float64()
		diff, _ := d.Float64()
		if dev := 100 * math.Abs(diff) / f; dev > pct {
			t.Fatalf("group %q: pool %q holds %d partitions, share %.3f: %.2f%% off", r.Group(), p.ID, c, f, dev)
		}
	}
}

// moves returns, for each pool, how many partitions left it and arrived at it
// between prev and next (either may be nil).
func moves(prev, next *ring.Ring) (left, arrived map[ring.PoolID]int) {
	left, arrived = map[ring.PoolID]int{}, map[ring.PoolID]int{}
	var a, b []ring.PoolID
	if prev != nil {
		a = prev.Assignment()
	}
	if next != nil {
		b = next.Assignment()
	}
	for p := range max(len(a), len(b)) {
		var from, to ring.PoolID
		if a != nil {
			from = a[p]
		}
		if b != nil {
			to = b[p]
		}
		if from != to {
			if from != "" {
				left[from]++
			}
			if to != "" {
				arrived[to]++
			}
		}
	}
	return left, arrived
}

// minMoved is the fewest partitions any rebalance from prev to next's pools
// could move while keeping every pool within one partition of its share:
// each pool first moves to the nearest count allowed to it, and if those
// counts sum to too few, each missing partition is one more arrival.
func minMoved(prev, next *ring.Ring) int {
	n := int64(1) << next.PartPower()
	held := map[ring.PoolID]int64{}
	if prev != nil {
		for _, id := range prev.Assignment() {
			held[id]++
		}
	}
	total := new(big.Rat)
	for _, p := range next.Pools() {
		total.Add(total, new(big.Rat).SetFloat64(p.Weight))
	}
	var arrivals, sum int64
	for _, p := range next.Pools() {
		q := new(big.Rat).SetFloat64(p.Weight)
		q.Mul(q, big.NewRat(n, 1)).Quo(q, total)
		lo := new(big.Int).Quo(q.Num(), q.Denom()).Int64()
		hi := lo
		if !q.IsInt() {
			hi++
		}
		c := held[p.ID]
		t := min(max(c, lo), hi)
		arrivals += max(0, t-c)
		sum += t
	}
	return int(arrivals + max(0, n-sum))
}

func assertOnlyMovesTo(t tb, prev, next *ring.Ring, to ring.PoolID) {
	t.Helper()
	_, arrived := moves(prev, next)
	for id, n := range arrived {
		if id != to {
			t.Fatalf("%d partitions moved to %q; only %q should receive", n, id, to)
		}
	}
}

func assertOnlyMovesFrom(t tb, prev, next *ring.Ring, from ring.PoolID) {
	t.Helper()
	left, _ := moves(prev, next)
	for id, n := range left {
		if id != from {
			t.Fatalf("%d partitions left %q; only %q should give up any", n, id, from)
		}
	}
}

var weightSets = []struct {
	name    string
	weights []float64
}{
	{"one", []float64{1}},
	{"equal 3", []float64{1, 1, 1}},
	{"equal 4", []float64{5, 5, 5, 5}},
	{"equal 7", []float64{1, 1, 1, 1, 1, 1, 1}},
	{"1 2 3 4", []float64{1, 2, 3, 4}},
	{"10 to 1", []float64{10, 1}},
	{"capacities in bytes", []float64{4e12, 2e12, 1e12, 5e11}},
	{"primes", []float64{2, 3, 5, 7, 11, 13, 17, 19, 23}},
	{"thirds", []float64{1.0 / 3, 2.0 / 3, 1}},
	{"with a drained pool", []float64{3, 0, 1}},
}

func TestBalance(t *testing.T) {
	for _, tt := range weightSets {
		t.Run(tt.name, func(t *testing.T) {
			r := build(t, nil, nil, weighted(tt.weights...)...).Ring("")
			assertBalanced(t, r, 1)
			if b := r.Balance(); b > 1 {
				t.Errorf("Balance() = %.3f%%", b)
			}
			t.Logf("balance %.4f%%, counts %v", r.Balance(), r.Counts())
		})
	}
}

func TestAddPoolMovesOnlyOntoIt(t *testing.T) {
	tests := []struct {
		name    string
		weights []float64
		add     float64
	}{
		{"3 to 4 equal", []float64{1, 1, 1}, 1},
		{"1 to 2", []float64{1}, 1},
		{"unequal, add big", []float64{1, 2, 3}, 6},
		{"unequal, add small", []float64{4, 2, 1}, 0.5},
		{"7 primes, add 1", []float64{2, 3, 5, 7, 11, 13, 17}, 1},
		{"capacities", []float64{4e12, 2e12, 1e12}, 3e12},
	}
	const n = 1 << ring.DefaultPartPower
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pools := weighted(tt.weights...)
			before := build(t, nil, nil, pools...)
			added := ring.Pool{ID: "new", Weight: tt.add}
			after := build(t, before, nil, append(pools, added)...)
			prev, next := before.Ring(""), after.Ring("")

			assertOnlyMovesTo(t, prev, next, "new")
			assertBalanced(t, next, 1)
			var total float64
			for _, w := range tt.weights {
				total += w
			}
			ideal := tt.add / (total + tt.add)
			moved := next.Moved(prev)
			if got := float64(moved) / n; math.Abs(got-ideal) > 0.1*ideal {
				t.Errorf("moved %.4f of partitions, ideal %.4f", got, ideal)
			}
			if max := int(math.Ceil(ideal * n)); moved > max {
				t.Errorf("moved %d partitions, more than ceil(ideal) = %d", moved, max)
			}
			t.Logf("moved %d of %d partitions (%.3f%%, ideal %.3f%%)", moved, n, 100*float64(moved)/n, 100*ideal)
		})
	}
}

func TestRemovePoolMovesOnlyItsPartitions(t *testing.T) {
	for _, tt := range weightSets {
		if len(tt.weights) < 2 {
			continue
		}
		t.Run(tt.name, func(t *testing.T) {
			pools := weighted(tt.weights...)
			before := build(t, nil, nil, pools...)
			gone := pools[len(pools)/2]
			after := build(t, before, nil, slices.Delete(slices.Clone(pools), len(pools)/2, len(pools)/2+1)...)
			prev, next := before.Ring(""), after.Ring("")

			assertOnlyMovesFrom(t, prev, next, gone.ID)
			held := 0
			for _, id := range prev.Assignment() {
				if id == gone.ID {
					held++
				}
			}
			if moved := next.Moved(prev); moved != held {
				t.Errorf("moved %d partitions; the removed pool held %d", moved, held)
			}
			assertBalanced(t, next, 1)
		})
	}
}

func TestWeightChangeMovesOnlyTheDifference(t *testing.T) {
	pools := weighted(1, 1, 1, 1)
	before := build(t, nil, nil, pools...)
	pools[1].Weight = 2 // 1/4 → 2/5 of the partitions
	after := build(t, before, nil, pools...)
	prev, next := before.Ring(""), after.Ring("")
	assertOnlyMovesTo(t, prev, next, "p1")
	assertBalanced(t, next, 1)
	const n = 1 << 16
	if moved, ideal := next.Moved(prev), n*2/5-n/4; math.Abs(float64(moved-ideal)) > 1 {
		t.Errorf("moved %d partitions, want %d", moved, ideal)
	}
}

func TestDeterminism(t *testing.T) {
	pools := weighted(3, 1, 4, 1, 5)
	encode := func(s *ring.Set) []byte {
		b, _ := s.MarshalBinary()
		return b
	}
	a := build(t, nil, &ring.Options{Seed: 42}, pools...)
	reversed := slices.Clone(pools)
	slices.Reverse(reversed)
	b := build(t, nil, &ring.Options{Seed: 42}, reversed...)
	if !bytes.Equal(encode(a), encode(b)) {
		t.Fatal("same pools, weights and seed gave different rings")
	}
	// From the same previous ring, too.
	more := append(slices.Clone(pools), ring.Pool{ID: "p9", Weight: 2})
	a2 := build(t, a, &ring.Options{Seed: 42}, more...)
	b2 := build(t, b, &ring.Options{Seed: 42}, more...)
	if !bytes.Equal(encode(a2), encode(b2)) {
		t.Fatal("same previous ring and inputs gave different rings")
	}
	c := build(t, nil, &ring.Options{Seed: 43}, pools...)
	if c.Ring("").Moved(a.Ring("")) == 0 {
		t.Error("seeds 42 and 43 gave the same assignment")
	}
}

func TestRebalanceWithoutChangeMovesNothing(t *testing.T) {
	b, err := ring.NewBuilder(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range weighted(1, 2, 2) {
		if err := b.SetPool(p); err != nil {
			t.Fatal(err)
		}
	}
	first, _ := b.Rebalance()
	again, _ := b.Rebalance()
	if m := again.Ring("").Moved(first.Ring("")); m != 0 || again.Version() != first.Version() {
		t.Errorf("second rebalance moved %d, version %d → %d", m, first.Version(), again.Version())
	}
	if err := b.SetPool(ring.Pool{ID: "p0", Weight: 1.5}); err != nil {
		t.Fatal(err)
	}
	changed, _ := b.Rebalance()
	if changed.Version() != first.Version()+1 {
		t.Errorf("version after a weight change = %d, want %d", changed.Version(), first.Version()+1)
	}
}

func TestBuilderErrors(t *testing.T) {
	if _, err := ring.NewBuilder(nil, &ring.Options{PartPower: ring.MaxPartPower + 1}); err == nil {
		t.Error("NewBuilder accepted part power above MaxPartPower")
	}
	prev := build(t, nil, &ring.Options{PartPower: 8}, weighted(1)...)
	if _, err := ring.NewBuilder(prev, &ring.Options{PartPower: 9}); err == nil {
		t.Error("NewBuilder accepted a part power different from prev's")
	}
	if b, err := ring.NewBuilder(prev, nil); err != nil {
		t.Error(err)
	} else if s, _ := b.Rebalance(); s.PartPower() != 8 {
		t.Errorf("part power %d, want prev's 8", s.PartPower())
	}

	b, _ := ring.NewBuilder(nil, nil)
	for _, p := range []ring.Pool{
		{ID: "", Weight: 1},
		{ID: "neg", Weight: -1},
		{ID: "nan", Weight: math.NaN()},
		{ID: "inf", Weight: math.Inf(1)},
	} {
		if err := b.SetPool(p); err == nil {
			t.Errorf("SetPool(%+v) accepted", p)
		}
	}
	if len(b.Pools()) != 0 {
		t.Errorf("rejected pools were kept: %v", b.Pools())
	}
	b.SetPool(ring.Pool{ID: "x", Weight: 1})
	b.RemovePool("x")
	b.RemovePool("never there")
	if s, err := b.Rebalance(); err != nil || len(s.Groups()) != 0 {
		t.Errorf("empty builder: %v, groups %q", err, s.Groups())
	}
}

// TestRebalanceProperties runs random histories of pool changes on small
// rings and checks, after every rebalance, that
//   - each pool holds its share rounded down or up;
//   - exactly the fewest partitions that could move did (minMoved);
//   - no pool both gave up and received partitions;
//   - adding a pool moved partitions onto it, and removing one moved its
//     partitions, and besides that at most one partition per other pool
//     (the rare case where rounding to whole partitions forces it);
//   - a fresh builder given the same inputs in another order builds the
//     same ring.
func TestRebalanceProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		opts := &ring.Options{
			PartPower: rapid.Uint8Range(1, 10).Draw(t, "partPower"),
			Seed:      rapid.Uint64().Draw(t, "seed"),
		}
		weight := rapid.SampledFrom([]float64{0, 0.1, 1, 1, 1, 2, 3, 7.5, 100, 1e12})
		group := rapid.SampledFrom([]string{"", "", "gold"})
		pools := map[ring.PoolID]ring.Pool{}
		var prev *ring.Set
		for step := range rapid.IntRange(1, 6).Draw(t, "steps") {
			var ids []ring.PoolID
			for id := range pools {
				ids = append(ids, id)
			}
			slices.Sort(ids)
			op := "add"
			if len(ids) > 0 {
				op = rapid.SampledFrom([]string{"add", "add", "remove", "reweight", "regroup", "none"}).Draw(t, "op")
			}
			var changed ring.PoolID
			switch op {
			case "add":
				changed = ring.PoolID(fmt.Sprintf("pool-%d", step))
				pools[changed] = ring.Pool{ID: changed, Weight: weight.Draw(t, "weight"), Group: group.Draw(t, "group")}
			case "remove":
				changed = rapid.SampledFrom(ids).Draw(t, "pool")
				delete(pools, changed)
			case "reweight", "regroup":
				p := pools[rapid.SampledFrom(ids).Draw(t, "pool")]
				if op == "reweight" {
					p.Weight = weight.Draw(t, "weight")
				} else {
					p.Group = group.Draw(t, "group")
				}
				pools[p.ID] = p
			}
			list := make([]ring.Pool, 0, len(pools))
			for _, p := range pools {
				list = append(list, p)
			}
			next := build(t, prev, opts, list...)

			slices.Reverse(list)
			again := build(t, prev, opts, list...)
			x, _ := next.MarshalBinary()
			y, _ := again.MarshalBinary()
			if !bytes.Equal(x, y) {
				t.Fatalf("step %d: same inputs in another order gave another ring", step)
			}

			groups := map[string]bool{}
			for _, g := range next.Groups() {
				groups[g] = true
			}
			if prev != nil {
				for _, g := range prev.Groups() {
					groups[g] = true
				}
			}
			for g := range groups {
				a, b := prev.Ring(g), next.Ring(g)
				if b != nil {
					assertBalanced(t, b, math.Inf(1))
				}
				if a == nil || b == nil {
					continue
				}
				if m, want := b.Moved(a), minMoved(a, b); m != want {
					t.Fatalf("step %d (%s): group %q: moved %d partitions, the minimum is %d", step, op, g, m, want)
				}
				left, arrived := moves(a, b)
				for id := range left {
					if arrived[id] > 0 {
						t.Fatalf("step %d (%s): group %q: pool %q gave up %d partitions and received %d",
							step, op, g, id, left[id], arrived[id])
					}
				}
				others := map[string]map[ring.PoolID]int{"add": arrived, "remove": left}[op]
				for id, k := range others {
					if id != changed && k > 1 {
						t.Fatalf("step %d (%s %q): group %q: %d partitions moved for %q", step, op, changed, g, k, id)
					}
				}
				switch op {
				case "none":
					if m := b.Moved(a); m != 0 {
						t.Fatalf("step %d: nothing changed, %d partitions moved", step, m)
					}
				}
			}
			prev = next
		}
	})
}
