package ring_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/cistern-mq/cistern/ring"
)

type simQueue struct{ project, queue string }

// simQueues returns n (project, queue) names shaped like a deployment's: a
// hundred projects with many queues each.
func simQueues(n int) []simQueue {
	qs := make([]simQueue, n)
	for i := range qs {
		qs[i] = simQueue{fmt.Sprintf("project-%02d", i%100), fmt.Sprintf("queue-%d", i)}
	}
	return qs
}

type simResult struct {
	imbalanceBefore, imbalanceAfter float64 // max deviation of a pool's queues from its weight share, %
	moved, ideal                    float64 // share of queues whose pool changed, and w/(W+w)
	movedElsewhere                  int     // queues that moved between two old pools
}

// simulate places queues on pools of weights, then on those plus one pool of
// weight add, and measures both placements and the move between them.
func simulate(t tb, queues []simQueue, weights []float64, add float64) simResult {
	t.Helper()
	pools := weighted(weights...)
	first := build(t, nil, nil, pools...)
	added := ring.Pool{ID: "added", Weight: add}
	before, after := first.Ring(""), build(t, first, nil, append(pools, added)...).Ring("")

	var res simResult
	var total float64
	for _, w := range weights {
		total += w
	}
	res.ideal = add / (total + add)
	countBefore, countAfter := map[ring.PoolID]int{}, map[ring.PoolID]int{}
	moved := 0
	for _, q := range queues {
		a, b := before.Lookup(q.project, q.queue), after.Lookup(q.project, q.queue)
		countBefore[a]++
		countAfter[b]++
		if a != b {
			moved++
			if b != added.ID {
				res.movedElsewhere++
			}
		}
	}
	res.moved = float64(moved) / float64(len(queues))
	res.imbalanceBefore = imbalance(countBefore, pools, len(queues))
	res.imbalanceAfter = imbalance(countAfter, append(pools, added), len(queues))
	return res
}

func imbalance(count map[ring.PoolID]int, pools []ring.Pool, n int) float64 {
	var total float64
	for _, p := range pools {
		total += p.Weight
	}
	worst := 0.0
	for _, p := range pools {
		want := float64(n) * p.Weight / total
		worst = max(worst, 100*math.Abs(float64(count[p.ID])-want)/want)
	}
	return worst
}

var simCases = []struct {
	name    string
	weights []float64
	add     float64
}{
	{"3 to 4 pools, equal weights", []float64{1, 1, 1}, 1},
	{"3 to 4 pools, unequal weights", []float64{4, 2, 1}, 3},
}

// TestPlacementSimulation places 100,000 queues on 3 pools, then on 4, at
// 2^16 partitions, and checks that the share of queues that moved is within
// 10% of the ideal w/(W+w), all of them onto the new pool.
func TestPlacementSimulation(t *testing.T) {
	queues := simQueues(100_000)
	for _, tt := range simCases {
		t.Run(tt.name, func(t *testing.T) {
			r := simulate(t, queues, tt.weights, tt.add)
			t.Logf("imbalance %.2f%% on 3 pools, %.2f%% on 4; moved %.2f%% of queues (ideal %.2f%%)",
				r.imbalanceBefore, r.imbalanceAfter, 100*r.moved, 100*r.ideal)
			if math.Abs(r.moved-r.ideal) > 0.1*r.ideal {
				t.Errorf("moved %.4f of queues, ideal %.4f", r.moved, r.ideal)
			}
			if r.movedElsewhere != 0 {
				t.Errorf("%d queues moved between old pools", r.movedElsewhere)
			}
			// Imbalance at 100k queues is sampling noise (about 0.5% per pool);
			// this only catches a broken ring.
			if r.imbalanceBefore > 3 || r.imbalanceAfter > 3 {
				t.Errorf("imbalance %.2f%% / %.2f%%", r.imbalanceBefore, r.imbalanceAfter)
			}
		})
	}
}

func BenchmarkPlacement(b *testing.B) {
	queues := simQueues(100_000)
	for _, tt := range simCases {
		b.Run(tt.name, func(b *testing.B) {
			var r simResult
			for b.Loop() {
				r = simulate(b, queues, tt.weights, tt.add)
			}
			b.ReportMetric(r.imbalanceBefore, "imbalance3-%")
			b.ReportMetric(r.imbalanceAfter, "imbalance4-%")
			b.ReportMetric(100*r.moved, "moved-%")
			b.ReportMetric(100*r.ideal, "ideal-%")
		})
	}
}

func BenchmarkLookup(b *testing.B) {
	s := build(b, nil, nil, weighted(1, 2, 3, 4)...)
	for b.Loop() {
		if _, err := s.LookupIn("", "7f3c2a9d0e1b4c5a", "orders-eu-west"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRebalance(b *testing.B) {
	prev := build(b, nil, nil, weighted(1, 1, 1)...)
	for b.Loop() {
		build(b, prev, nil, weighted(1, 1, 1, 1)...)
	}
}
