// Package ring places queues on pools: a deterministic, weighted consistent
// hash in the manner of OpenStack Swift's ring.
//
// # Partitions and the hash
//
// The space of (project, queue) names is cut into 2^P partitions, P being the
// part power (DefaultPartPower, 16). A queue falls in partition
//
//	sum := sha256.Sum256([]byte(project + "\x00" + queue))
//	partition := binary.BigEndian.Uint64(sum[:8]) >> (64 - P)
//
// that is, the top P bits of the first 8 bytes of SHA-256, read big-endian.
// This function (Partition) is frozen: it never changes between versions, so a
// saved ring gives the same answers forever. The NUL separator cannot occur in
// a Zaqar project id or queue name, so no two pairs share an input.
//
// A ring is a table from partition to pool. Lookup is a hash and an index;
// the work is in building the table.
//
// # Weights
//
// Every pool has a weight, normally its declared capacity in any unit shared
// by all pools. A pool's quota is its weight's share of the partitions of its
// group: 2^P × weight ÷ total weight, computed exactly (weights are float64
// and the arithmetic is rational, so no rounding depends on the platform).
// Each pool gets its quota rounded down or up: the largest remainders get the
// leftover partitions, ties broken by a seeded hash of the pool ID, then the
// ID. So every pool is within one partition of its quota; at 2^16 partitions
// that is within 1 % for any pool with at least 1/655 of the weight. A pool
// of weight 0 is known but holds nothing (it drains).
//
// # Minimal movement
//
// Builder.Rebalance starts from the previous assignment and moves the fewest
// partitions that any ring keeping every pool within one partition of its
// quota could. A pool keeps every partition it holds up to its new quota;
// only pools above quota give up partitions, only pools below quota receive
// them, and the partitions of removed pools are handed out first. Rounding is
// sticky: a pool already holding its quota rounded either way keeps it. So
// adding a pool moves partitions only onto it, removing a pool moves only its
// partitions, changing a weight moves only the difference, and a rebalance
// with nothing changed moves nothing. The one exception is rounding: when the
// pool added or removed is so small that other quotas change by less than a
// partition, whole partitions may not add up, and at most one partition per
// other pool moves to keep every pool within one partition of its quota.
//
// Moving a partition moves where new queues go. Cistern records a queue's pool
// once, when it is created, so existing queues move only by an explicit
// migration (DESIGN.md, "Pools, flavors and the ring").
//
// # Determinism
//
// The same pools, weights, groups, seed and previous assignment give the same
// ring, byte for byte; the order pools were added in does not matter. The seed
// orders the partitions (which ones a pool gives up or receives) and breaks
// rounding ties; a different seed gives a different but equally good ring.
// Nothing depends on map order, the clock or math/rand.
//
// # Groups
//
// A pool belongs to one group, the Zaqar flavor ("" for pools without one).
// Each group is placed separately: a Set holds one Ring per group, and
// Set.LookupIn(group, project, queue) only answers pools of that group.
package ring

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
)

const (
	// DefaultPartPower is the part power used when Options leaves it zero:
	// 65,536 partitions.
	DefaultPartPower = 16
	// MaxPartPower bounds the table size (16 Mi partitions per group).
	MaxPartPower = 24
	// MaxPools is the most pools one group can hold: a partition names its
	// pool with a 16-bit index.
	MaxPools = 1 << 16
)

// ErrNoPool is returned by Set.LookupIn for a group with no pool of positive
// weight.
var ErrNoPool = errors.New("ring: no pool in group")

// PoolID names a pool (a Zaqar pool name).
type PoolID string

// Pool is a pool as the ring sees it.
type Pool struct {
	ID PoolID
	// Weight is the pool's relative share of its group's partitions, normally
	// its declared capacity. Finite and >= 0; 0 means "place nothing here".
	Weight float64
	// Group is the Zaqar flavor the pool serves; "" for pools without one.
	Group string
}

// Partition returns the partition of (project, queue) for a ring of 2^partPower
// partitions (partPower <= MaxPartPower). The function is frozen; see the
// package doc.
func Partition(partPower uint8, project, queue string) uint32 {
	var buf [256]byte
	b := append(buf[:0], project...)
	b = append(b, 0)
	b = append(b, queue...)
	sum := sha256.Sum256(b)
	return uint32(binary.BigEndian.Uint64(sum[:8]) >> (64 - uint(partPower)))
}

// Ring is the immutable placement of one group: a table from partition to
// pool. It is safe for concurrent use.
type Ring struct {
	group     string
	partPower uint8
	pools     []Pool   // weight > 0, sorted by ID
	parts     []uint16 // partition → index into pools
}

// Lookup returns the pool that (project, queue) is placed on.
func (r *Ring) Lookup(project, queue string) PoolID {
	return r.pools[r.parts[Partition(r.partPower, project, queue)]].ID
}

// Partition returns the partition of (project, queue) in this ring.
func (r *Ring) Partition(project, queue string) uint32 {
	return Partition(r.partPower, project, queue)
}

// Group returns the group (flavor) the ring places on.
func (r *Ring) Group() string { return r.group }

// PartPower returns P; the ring has 2^P partitions.
func (r *Ring) PartPower() uint8 { return r.partPower }

// Pools returns the ring's pools (those of positive weight), sorted by ID.
func (r *Ring) Pools() []Pool { return slices.Clone(r.pools) }

// Assignment returns the pool of every partition, indexed by partition.
func (r *Ring) Assignment() []PoolID {
	out := make([]PoolID, len(r.parts))
	for p, i := range r.parts {
		out[p] = r.pools[i].ID
	}
	return out
}

// Counts returns how many partitions each pool holds, in the order of Pools.
func (r *Ring) Counts() []int {
	n := make([]int, len(r.pools))
	for _, i := range r.parts {
		n[i]++
	}
	return n
}

// Balance returns the largest deviation, in percent, of a pool's partition
// count from its exact weight share (Swift's "balance").
func (r *Ring) Balance() float64 {
	var total float64
	for _, p := range r.pools {
		total += p.Weight
	}
	worst := 0.0
	for i, n := range r.Counts() {
		share := float64(len(r.parts)) * (r.pools[i].Weight / total)
		worst = max(worst, 100*abs(float64(n)-share)/share)
	}
	return worst
}

// Moved returns how many partitions are on a different pool than in prev. A
// nil prev, or one of another part power, counts every partition.
func (r *Ring) Moved(prev *Ring) int {
	if prev == nil || prev.partPower != r.partPower {
		return len(r.parts)
	}
	n := 0
	for p, i := range r.parts {
		if r.pools[i].ID != prev.pools[prev.parts[p]].ID {
			n++
		}
	}
	return n
}

func (r *Ring) equal(o *Ring) bool {
	return o != nil && r.group == o.group && r.partPower == o.partPower &&
		slices.Equal(r.pools, o.pools) && slices.Equal(r.parts, o.parts)
}

// Set is the immutable placement of every group: one Ring per group that has
// a pool of positive weight. It is what Builder.Rebalance produces and what is
// saved (MarshalBinary). It is safe for concurrent use.
type Set struct {
	version   uint64
	partPower uint8
	rings     []*Ring // sorted by group
}

// LookupIn returns the pool of group that (project, queue) is placed on, or an
// error wrapping ErrNoPool when the group has no pool of positive weight.
func (s *Set) LookupIn(group, project, queue string) (PoolID, error) {
	r := s.Ring(group)
	if r == nil {
		return "", fmt.Errorf("%w %q", ErrNoPool, group)
	}
	return r.Lookup(project, queue), nil
}

// Ring returns the ring of group, or nil if it has none. A nil Set has none.
func (s *Set) Ring(group string) *Ring {
	if s == nil {
		return nil
	}
	i, ok := slices.BinarySearchFunc(s.rings, group, func(r *Ring, g string) int {
		return strings.Compare(r.group, g)
	})
	if !ok {
		return nil
	}
	return s.rings[i]
}

// Groups returns the groups that have a ring, sorted.
func (s *Set) Groups() []string {
	out := make([]string, len(s.rings))
	for i, r := range s.rings {
		out[i] = r.group
	}
	return out
}

// Pools returns the pools of every ring, sorted by ID.
func (s *Set) Pools() []Pool {
	var out []Pool
	for _, r := range s.rings {
		out = append(out, r.pools...)
	}
	slices.SortFunc(out, byID)
	return out
}

// PartPower returns P; every ring of the set has 2^P partitions.
func (s *Set) PartPower() uint8 { return s.partPower }

// Version counts the rebalances that changed something: 1 for the first
// ring, one more each time a rebalance changes a pool, weight or partition.
func (s *Set) Version() uint64 { return s.version }

func (s *Set) equalRings(o *Set) bool {
	return o != nil && slices.EqualFunc(s.rings, o.rings, (*Ring).equal)
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
