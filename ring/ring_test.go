package ring_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/cistern-mq/cistern/ring"
)

// tb is what the helpers need of *testing.T and *rapid.T.
type tb interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// build rebalances pools from prev and fails the test on error.
func build(t tb, prev *ring.Set, opts *ring.Options, pools ...ring.Pool) *ring.Set {
	t.Helper()
	b, err := ring.NewBuilder(prev, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pools {
		if err := b.SetPool(p); err != nil {
			t.Fatal(err)
		}
	}
	s, err := b.Rebalance()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// weighted returns pools p0, p1, ... with the given weights, in group "".
func weighted(ws ...float64) []ring.Pool {
	out := make([]ring.Pool, len(ws))
	for i, w := range ws {
		out[i] = ring.Pool{ID: ring.PoolID(fmt.Sprintf("p%d", i)), Weight: w}
	}
	return out
}

// The partition hash is a storage contract: these values must never change.
func TestPartitionIsFrozen(t *testing.T) {
	tests := []struct {
		project, queue string
		p8, p16, p24   uint32
	}{
		{"", "", 110, 28212, 7222283},
		{"proj", "queue", 57, 14605, 3739039},
		{"7f3c2a", "orders-eu", 107, 27614, 7069273},
		{"tenant-1", "q-0", 55, 14215, 3639264},
	}
	for _, tt := range tests {
		for _, c := range []struct {
			pp   uint8
			want uint32
		}{{8, tt.p8}, {16, tt.p16}, {24, tt.p24}} {
			if got := ring.Partition(c.pp, tt.project, tt.queue); got != c.want {
				t.Errorf("Partition(%d, %q, %q) = %d, want %d", c.pp, tt.project, tt.queue, got, c.want)
			}
		}
	}
	// The separator keeps ("a", "bc") and ("ab", "c") apart.
	if ring.Partition(24, "a", "bc") == ring.Partition(24, "ab", "c") {
		t.Error("(a, bc) and (ab, c) share a partition")
	}
}

func TestLookupFollowsAssignment(t *testing.T) {
	s := build(t, nil, nil, weighted(1, 2, 3)...)
	r := s.Ring("")
	assignment := r.Assignment()
	for i := range 1000 {
		project, queue := fmt.Sprintf("p%d", i%7), fmt.Sprintf("q%d", i)
		part := r.Partition(project, queue)
		if got, want := r.Lookup(project, queue), assignment[part]; got != want {
			t.Fatalf("Lookup(%q, %q) = %q, partition %d is on %q", project, queue, got, part, want)
		}
		if got, err := s.LookupIn("", project, queue); err != nil || got != assignment[part] {
			t.Fatalf("LookupIn = %q, %v; want %q", got, err, assignment[part])
		}
	}
}

func TestGroups(t *testing.T) {
	s := build(t, nil, nil,
		ring.Pool{ID: "a", Weight: 1},
		ring.Pool{ID: "b", Weight: 1},
		ring.Pool{ID: "gold-1", Weight: 2, Group: "gold"},
		ring.Pool{ID: "gold-2", Weight: 1, Group: "gold"},
		ring.Pool{ID: "drained", Weight: 0, Group: "gold"},
		ring.Pool{ID: "idle", Weight: 0, Group: "empty"},
	)
	if got, want := s.Groups(), []string{"", "gold"}; !slices.Equal(got, want) {
		t.Fatalf("Groups() = %q, want %q", got, want)
	}
	in := map[string][]ring.PoolID{"": {"a", "b"}, "gold": {"gold-1", "gold-2"}}
	for group, pools := range in {
		seen := map[ring.PoolID]bool{}
		for i := range 2000 {
			id, err := s.LookupIn(group, "proj", fmt.Sprint(i))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(pools, id) {
				t.Fatalf("LookupIn(%q) placed on %q, not one of %q", group, id, pools)
			}
			seen[id] = true
		}
		if len(seen) != len(pools) {
			t.Errorf("group %q: 2000 queues used only %v", group, seen)
		}
	}
	for _, group := range []string{"empty", "silver"} {
		if _, err := s.LookupIn(group, "p", "q"); !errors.Is(err, ring.ErrNoPool) {
			t.Errorf("LookupIn(%q) error = %v, want ErrNoPool", group, err)
		}
	}
	if got := len(s.Pools()); got != 4 {
		t.Errorf("Set.Pools() has %d pools, want the 4 of positive weight", got)
	}

	// Moving a pool to another group frees its partitions in the old group
	// and takes a share in the new one; the other pools keep what they had
	// in the group they gain in.
	b, err := ring.NewBuilder(s, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range s.Pools() {
		if p.ID == "b" {
			p.Group = "gold"
		}
		if err := b.SetPool(p); err != nil {
			t.Fatal(err)
		}
	}
	next, err := b.Rebalance()
	if err != nil {
		t.Fatal(err)
	}
	if got := next.Ring("").Counts(); !slices.Equal(got, []int{1 << 16}) {
		t.Errorf("group \"\" after moving b away: counts %v, want all on a", got)
	}
	assertOnlyMovesTo(t, s.Ring("gold"), next.Ring("gold"), "b")
}

func TestRingAccessors(t *testing.T) {
	s := build(t, nil, &ring.Options{PartPower: 10}, weighted(1, 3)...)
	r := s.Ring("")
	if r.PartPower() != 10 || s.PartPower() != 10 || r.Group() != "" {
		t.Errorf("PartPower %d/%d, Group %q", r.PartPower(), s.PartPower(), r.Group())
	}
	if got := r.Counts(); !slices.Equal(got, []int{256, 768}) {
		t.Errorf("Counts() = %v, want [256 768]", got)
	}
	if r.Balance() != 0 {
		t.Errorf("Balance() = %v, want 0", r.Balance())
	}
	if r.Moved(nil) != 1024 || r.Moved(r) != 0 {
		t.Errorf("Moved(nil) = %d, Moved(self) = %d", r.Moved(nil), r.Moved(r))
	}
	pools := r.Pools()
	pools[0].ID = "changed"
	if r.Pools()[0].ID != "p0" {
		t.Error("Pools() shares the ring's slice")
	}
}
