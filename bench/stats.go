package bench

import (
	"maps"
	"math"
	"time"
)

// Op names a kind of request the workers send.
type Op string

// The operations, in report order. OpQueue is setup and teardown (PUT and
// DELETE of the queues); it is never part of the measured window.
const (
	OpPost   Op = "post"   // producer: POST /messages
	OpClaim  Op = "claim"  // consumer: POST /claims?limit=N
	OpDelete Op = "delete" // consumer: DELETE /messages/{id}?claim_id=…
	OpPop    Op = "pop"    // consumer with Pop: DELETE /messages?pop=N
	OpList   Op = "list"   // observer: GET /messages
	OpQueue  Op = "queue"
)

// measuredOps are the operations a report lists, in order.
var measuredOps = []Op{OpPost, OpClaim, OpDelete, OpPop, OpList}

// opStats are the results of one operation.
type opStats struct {
	ok      int64
	latency Histogram        // successful requests only
	errors  map[string]int64 // by errorClass
}

func (s *opStats) merge(o *opStats) {
	s.ok += o.ok
	s.latency.Merge(&o.latency)
	for k, v := range o.errors {
		if s.errors == nil {
			s.errors = make(map[string]int64)
		}
		s.errors[k] += v
	}
}

// tally is what one worker saw in the measured window. Each worker owns
// one, so recording takes no lock; Run merges them when the workers are
// done.
type tally struct {
	ops        map[Op]*opStats
	posted     int64 // messages the server acknowledged
	claimed    int64 // messages handed out by claims
	consumed   int64 // messages deleted with their claim id, or popped
	emptyTakes int64 // claims (204) and pops that found nothing
	aborted    int64 // requests cut off by the deadline or an interrupt, whenever they started
}

func newTally() *tally { return &tally{ops: make(map[Op]*opStats)} }

func (t *tally) op(op Op) *opStats {
	s := t.ops[op]
	if s == nil {
		s = &opStats{}
		t.ops[op] = s
	}
	return s
}

func (t *tally) success(op Op, d time.Duration) {
	s := t.op(op)
	s.ok++
	s.latency.Record(d)
}

func (t *tally) failure(op Op, class string) {
	s := t.op(op)
	if s.errors == nil {
		s.errors = make(map[string]int64)
	}
	s.errors[class]++
}

func (t *tally) merge(o *tally) {
	for op, s := range o.ops {
		t.op(op).merge(s)
	}
	t.posted += o.posted
	t.claimed += o.claimed
	t.consumed += o.consumed
	t.emptyTakes += o.emptyTakes
	t.aborted += o.aborted
}

// opReport turns the merged results of one operation into its report.
func (s *opStats) report(window time.Duration) OpReport {
	var errs int64
	for _, v := range s.errors {
		errs += v
	}
	r := OpReport{
		Requests: s.ok + errs,
		OK:       s.ok,
		Errors:   maps.Clone(s.errors),
		Latency: Latency{
			P50:  ms(s.latency.Quantile(0.50)),
			P90:  ms(s.latency.Quantile(0.90)),
			P99:  ms(s.latency.Quantile(0.99)),
			Max:  ms(s.latency.Max()),
			Mean: ms(s.latency.Mean()),
		},
	}
	r.PerSecond = rate(r.Requests, window)
	return r
}

// ms converts d to milliseconds, to the microsecond.
func ms(d time.Duration) float64 {
	return float64(d.Round(time.Microsecond)) / float64(time.Millisecond)
}

// rate is n per second of window, to a thousandth.
func rate(n int64, window time.Duration) float64 {
	if window <= 0 {
		return 0
	}
	return math.Round(float64(n)/window.Seconds()*1000) / 1000
}
