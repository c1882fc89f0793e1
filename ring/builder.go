package ring

import (
	"cmp"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/big"
	"slices"
	"strings"
)

// Options configure a Builder. A nil *Options means all defaults.
type Options struct {
	// PartPower is P, for 2^P partitions: 1 to MaxPartPower. Zero means the
	// previous set's part power, or DefaultPartPower without one.
	PartPower uint8
	// Seed orders partitions and breaks rounding ties. Keep it fixed for the
	// life of a deployment; any value is as good as another.
	Seed uint64
}

// Builder is the mutable side of the ring: it holds the pools, the previous
// assignment and the seed, and Rebalance turns them into a new Set. A Builder
// is not safe for concurrent use.
type Builder struct {
	partPower uint8
	seed      uint64
	pools     map[PoolID]Pool
	prev      *Set
}

// NewBuilder returns a Builder with no pools that rebalances from prev (nil
// for a first ring). It fails if opts.PartPower is out of range or differs from
// prev's: changing the partition count would re-place nearly every queue.
func NewBuilder(prev *Set, opts *Options) (*Builder, error) {
	if opts == nil {
		opts = &Options{}
	}
	p := opts.PartPower
	switch {
	case p == 0 && prev != nil:
		p = prev.partPower
	case p == 0:
		p = DefaultPartPower
	case p > MaxPartPower:
		return nil, fmt.Errorf("ring: part power %d above %d", p, MaxPartPower)
	case prev != nil && p != prev.partPower:
		return nil, fmt.Errorf("ring: part power %d differs from the previous ring's %d", p, prev.partPower)
	}
	return &Builder{partPower: p, seed: opts.Seed, pools: map[PoolID]Pool{}, prev: prev}, nil
}

// SetPool adds p, or replaces the pool with its ID (to change its weight or
// group). It fails for an empty ID or a weight that is negative, NaN or
// infinite.
func (b *Builder) SetPool(p Pool) error {
	if p.ID == "" {
		return errors.New("ring: empty pool ID")
	}
	if !(p.Weight >= 0) || math.IsInf(p.Weight, 1) {
		return fmt.Errorf("ring: pool %q: weight %v is not a finite number >= 0", p.ID, p.Weight)
	}
	b.pools[p.ID] = p
	return nil
}

// RemovePool removes the pool with id, if there is one.
func (b *Builder) RemovePool(id PoolID) { delete(b.pools, id) }

// Pools returns the builder's pools, sorted by ID.
func (b *Builder) Pools() []Pool {
	out := make([]Pool, 0, len(b.pools))
	for _, p := range b.pools {
		out = append(out, p)
	}
	slices.SortFunc(out, byID)
	return out
}

// Rebalance places every group's partitions on the group's pools, moving as
// few as possible from the previous assignment (see the package doc), and
// makes the result the builder's new previous assignment. Groups whose pools
// all weigh 0 get no ring. It fails only if a group has more than MaxPools
// pools.
func (b *Builder) Rebalance() (*Set, error) {
	groups := map[string][]Pool{}
	for _, p := range b.Pools() {
		if p.Weight > 0 {
			groups[p.Group] = append(groups[p.Group], p)
		}
	}
	names := make([]string, 0, len(groups))
	for g, pools := range groups {
		if len(pools) > MaxPools {
			return nil, fmt.Errorf("ring: group %q has %d pools, more than %d", g, len(pools), MaxPools)
		}
		names = append(names, g)
	}
	slices.Sort(names)

	order := partitionOrder(b.partPower, b.seed)
	s := &Set{partPower: b.partPower, version: 1}
	for _, g := range names {
		s.rings = append(s.rings, place(g, groups[g], b.prev.Ring(g), b.partPower, b.seed, order))
	}
	if b.prev != nil {
		s.version = b.prev.version
		if !s.equalRings(b.prev) {
			s.version++
		}
	}
	b.prev = s
	return s, nil
}

// place builds the ring of one group from its previous ring (nil if none).
func place(group string, pools []Pool, prev *Ring, partPower uint8, seed uint64, order []uint32) *Ring {
	n := 1 << partPower
	// owner[p] is the index of p's pool, or -1 while p is unassigned.
	owner := make([]int32, n)
	count := make([]int, len(pools))
	fresh := make([]bool, len(pools)) // not in prev
	for p := range owner {
		owner[p] = -1
	}
	for i := range fresh {
		fresh[i] = true
	}
	if prev != nil {
		idx := make(map[PoolID]int32, len(pools))
		for i, p := range pools {
			idx[p.ID] = int32(i)
		}
		remap := make([]int32, len(prev.pools))
		for i, p := range prev.pools {
			remap[i] = -1
			if j, ok := idx[p.ID]; ok {
				remap[i] = j
				fresh[j] = false
			}
		}
		for p, i := range prev.parts {
			if j := remap[i]; j >= 0 {
				owner[p] = j
				count[j]++
			}
		}
	}

	target := targets(pools, count, fresh, n, seed)

	// Pools above target give up the partitions that come first in order;
	// the unassigned partitions, in order, fill the pools below target, in
	// ID order.
	excess := make([]int, len(pools))
	for i := range pools {
		excess[i] = max(0, count[i]-target[i])
	}
	for _, p := range order {
		if i := owner[p]; i >= 0 && excess[i] > 0 {
			owner[p] = -1
			excess[i]--
			count[i]--
		}
	}
	next := 0
	for _, p := range order {
		if owner[p] >= 0 {
			continue
		}
		for count[next] >= target[next] {
			next++
		}
		owner[p] = int32(next)
		count[next]++
	}

	parts := make([]uint16, n)
	for p, i := range owner {
		parts[p] = uint16(i)
	}
	return &Ring{group: group, partPower: partPower, pools: pools, parts: parts}
}

// targets returns how many of n partitions each pool should hold, given how
// many it holds now and whether it is fresh (new to this ring). Every target
// is the pool's exact quota rounded down or up, and the targets sum to n.
//
// Rounding is largest-remainder, made sticky so that it never moves a
// partition it need not: a pool holding its quota rounded either way keeps
// that count. When the counts so kept do not sum to n, the pools that change
// are, first, those already moving the same way (fresh or receiving when
// adding, giving up when taking back), then the largest remainders (smallest
// when taking back), then a seeded hash of the ID, then the ID. With no
// previous assignment this is plain largest-remainder rounding.
func targets(pools []Pool, count []int, fresh []bool, n int, seed uint64) []int {
	total := new(big.Rat)
	weight := make([]*big.Rat, len(pools))
	for i, p := range pools {
		weight[i] = new(big.Rat).SetFloat64(p.Weight)
		total.Add(total, weight[i])
	}
	type rounding struct {
		i      int
		lo, hi int
		rem    *big.Rat // quota - lo, in [0, 1)
		tie    uint64
	}
	rs := make([]rounding, len(pools))
	target := make([]int, len(pools))
	sum := 0
	for i, p := range pools {
		q := new(big.Rat).Mul(weight[i], new(big.Rat).SetInt64(int64(n)))
		q.Quo(q, total)
		lo := new(big.Int).Quo(q.Num(), q.Denom()) // q > 0, so this is the floor
		r := rounding{i: i, lo: int(lo.Int64()), rem: q.Sub(q, new(big.Rat).SetInt(lo))}
		r.hi = r.lo
		if r.rem.Sign() > 0 {
			r.hi++
		}
		h := fnv.New64a()
		h.Write([]byte(p.ID))
		r.tie = mix64(seed ^ h.Sum64())
		rs[i] = r
		target[i] = min(max(count[i], r.lo), r.hi)
		sum += target[i]
	}

	// Exact quotas sum to n, so the floors sum to at most n and the ceilings
	// to at least n: the candidates below always suffice.
	if sum < n {
		var up []rounding
		for _, r := range rs {
			if target[r.i] < r.hi {
				up = append(up, r)
			}
		}
		receiving := func(r rounding) bool { return fresh[r.i] || count[r.i] < target[r.i] }
		slices.SortFunc(up, func(a, b rounding) int {
			return cmp.Or(
				-cmpBool(receiving(a), receiving(b)),
				-a.rem.Cmp(b.rem),
				cmp.Compare(a.tie, b.tie),
				strings.Compare(string(pools[a.i].ID), string(pools[b.i].ID)))
		})
		for _, r := range up[:n-sum] {
			target[r.i]++
		}
	}
	if sum > n {
		var down []rounding
		for _, r := range rs {
			if target[r.i] > r.lo {
				down = append(down, r)
			}
		}
		giving := func(r rounding) bool { return count[r.i] > target[r.i] }
		slices.SortFunc(down, func(a, b rounding) int {
			return cmp.Or(
				-cmpBool(giving(a), giving(b)),
				a.rem.Cmp(b.rem),
				cmp.Compare(a.tie, b.tie),
				strings.Compare(string(pools[a.i].ID), string(pools[b.i].ID)))
		})
		for _, r := range down[:sum-n] {
			target[r.i]--
		}
	}
	return target
}

// partitionOrder returns every partition, sorted by a seeded hash: the order
// in which pools give up partitions and receive them.
func partitionOrder(partPower uint8, seed uint64) []uint32 {
	// Sort keys carry the hash's top 40 bits above the partition's 24, so a
	// plain integer sort orders by hash, then partition.
	keys := make([]uint64, 1<<partPower)
	for p := range keys {
		keys[p] = mix64(seed+uint64(p)*0x9e3779b97f4a7c15)&^(1<<24-1) | uint64(p)
	}
	slices.Sort(keys)
	order := make([]uint32, len(keys))
	for i, k := range keys {
		order[i] = uint32(k & (1<<24 - 1))
	}
	return order
}

// mix64 is the SplitMix64 finalizer. It is part of what makes a rebalance
// reproducible; changing it would change new rings, never saved ones.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

func byID(a, b Pool) int { return strings.Compare(string(a.ID), string(b.ID)) }
