package bench

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// Report is the outcome of a run; its JSON form is what -json prints.
// Counts and rates cover the measured window only: a request counts when
// it starts after the window opens and ends before it closes.
type Report struct {
	Config  Config    `json:"config"`
	Started time.Time `json:"started"`
	Queues  []string  `json:"queues"`
	Window  float64   `json:"window_s"` // length of the measured window
	Stopped string    `json:"stopped"`  // duration, messages, deadline or interrupted

	Posted   Throughput `json:"posted"`   // messages acknowledged by a 201
	Consumed Throughput `json:"consumed"` // messages deleted with their claim id, or popped
	Claimed  int64      `json:"claimed"`  // messages handed out by claims

	// EmptyTakes counts claims (204) and pops that found no message.
	EmptyTakes int64 `json:"empty_takes"`
	// Aborted counts requests cut off by the deadline or an interrupt,
	// inside or outside the window.
	Aborted int64 `json:"aborted"`

	// Ops has one entry for each operation the configured roles send.
	Ops map[Op]OpReport `json:"ops"`

	// Store is present when the metrics URL served StoreMetric at both
	// ends of the window.
	Store *StoreReport `json:"store,omitempty"`

	// TeardownErrors counts the queues that could not be deleted at the
	// end, by HTTP status or timeout, decode, net; absent when none failed.
	TeardownErrors map[string]int64 `json:"teardown_errors,omitempty"`

	Warnings []string `json:"warnings,omitempty"`
}

// Throughput is a number of messages and its rate over the window.
type Throughput struct {
	Messages  int64   `json:"messages"`
	PerSecond float64 `json:"per_s"`
}

// OpReport describes the requests of one operation.
type OpReport struct {
	Requests  int64            `json:"requests"` // answered, successfully or not
	OK        int64            `json:"ok"`
	PerSecond float64          `json:"per_s"` // requests per second
	Latency   Latency          `json:"latency_ms"`
	Errors    map[string]int64 `json:"errors,omitempty"` // by HTTP status, or timeout, decode, net
}

// Latency of the successful requests, in milliseconds.
type Latency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// StoreReport is the growth of StoreMetric over the window, overall and
// per message. PerPosted and PerConsumed divide the same total, so in a
// run with both producers and consumers each carries the cost of both
// sides; they are null when their count is 0.
type StoreReport struct {
	Metric      string             `json:"metric"`
	Requests    float64            `json:"requests"`
	PerPosted   *float64           `json:"per_posted"`
	PerConsumed *float64           `json:"per_consumed"`
	ByVerb      map[string]float64 `json:"by_verb,omitempty"`
}

// ops returns the operations the configured roles send, in report order.
func (c *Config) ops() []Op {
	var ops []Op
	if c.Producers > 0 {
		ops = append(ops, OpPost)
	}
	if c.Consumers > 0 && c.Pop > 0 {
		ops = append(ops, OpPop)
	} else if c.Consumers > 0 {
		ops = append(ops, OpClaim, OpDelete)
	}
	if c.Observers > 0 {
		ops = append(ops, OpList)
	}
	return ops
}

func (rep *Report) fill(t *tally, window time.Duration) {
	rep.Window = window.Seconds()
	rep.Posted = Throughput{t.posted, rate(t.posted, window)}
	rep.Consumed = Throughput{t.consumed, rate(t.consumed, window)}
	rep.Claimed = t.claimed
	rep.EmptyTakes = t.emptyTakes
	rep.Aborted = t.aborted
	rep.Ops = make(map[Op]OpReport)
	for _, op := range rep.Config.ops() {
		rep.Ops[op] = t.op(op).report(window)
	}
}

func (rep *Report) fillStore(before, after scrape) {
	for _, sc := range []scrape{before, after} {
		switch {
		case errors.Is(sc.err, errNoMetrics):
			return // not asked, or the probe before the load already said why
		case sc.err != nil || !sc.sample.Found:
			rep.Warnings = append(rep.Warnings, "store requests not reported: "+describeScrape(sc))
			return
		}
	}
	if after.sample.Total < before.sample.Total {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("store requests not reported: %s went down (server restarted?)", StoreMetric))
		return
	}
	s := &StoreReport{
		Metric:   StoreMetric,
		Requests: after.sample.Total - before.sample.Total,
		ByVerb:   make(map[string]float64),
	}
	for verb, v := range after.sample.ByVerb {
		if d := v - before.sample.ByVerb[verb]; d != 0 {
			s.ByVerb[verb] = d
		}
	}
	per := func(n int64) *float64 {
		if n == 0 {
			return nil
		}
		v := s.Requests / float64(n)
		return &v
	}
	s.PerPosted, s.PerConsumed = per(rep.Posted.Messages), per(rep.Consumed.Messages)
	rep.Store = s
}

// WriteTable writes the report for people.
func (rep *Report) WriteTable(w io.Writer) error {
	c := &rep.Config
	var b strings.Builder
	fmt.Fprintf(&b, "cistern-bench %s project=%s queues=%d producers=%d consumers=%d observers=%d\n",
		c.URL, c.Project, c.Queues, c.Producers, c.Consumers, c.Observers)
	take := fmt.Sprintf("claim %d (ttl %d, grace %d)", c.ClaimLimit, c.ClaimTTL, c.ClaimGrace)
	if c.Pop > 0 {
		take = fmt.Sprintf("pop %d", c.Pop)
	}
	fmt.Fprintf(&b, "batch %d x %d B, ttl %d; %s; list %d\n", c.Batch, c.Size, c.TTL, take, c.ListLimit)
	fmt.Fprintf(&b, "window %.2fs after %v warm-up, stopped by %s\n\n", rep.Window, c.Warmup, rep.Stopped)

	fmt.Fprintf(&b, "%-9s %10s %10s\n", "messages", "count", "msg/s")
	fmt.Fprintf(&b, "%-9s %10d %10.1f\n", "posted", rep.Posted.Messages, rep.Posted.PerSecond)
	fmt.Fprintf(&b, "%-9s %10d %10.1f\n\n", "consumed", rep.Consumed.Messages, rep.Consumed.PerSecond)
	fmt.Fprintf(&b, "%-9s %10s %10s %9s %9s %9s %9s  %s\n", "op", "requests", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors")
	for _, op := range measuredOps {
		o, ok := rep.Ops[op]
		if !ok {
			continue
		}
		fmt.Fprintf(&b, "%-9s %10d %10.1f %9.2f %9.2f %9.2f %9.2f  %s\n",
			op, o.Requests, o.PerSecond, o.Latency.P50, o.Latency.P90, o.Latency.P99, o.Latency.Max, errorList(o.Errors))
	}
	b.WriteString("\n")
	switch {
	case c.Consumers > 0 && c.Pop > 0:
		fmt.Fprintf(&b, "%d pops found nothing\n", rep.EmptyTakes)
	case c.Consumers > 0:
		fmt.Fprintf(&b, "claimed %d messages; %d claims found nothing\n", rep.Claimed, rep.EmptyTakes)
	}
	if rep.Aborted > 0 {
		fmt.Fprintf(&b, "%d requests cut off by the deadline or an interrupt\n", rep.Aborted)
	}
	if s := rep.Store; s != nil {
		fmt.Fprintf(&b, "store requests (%s): %.0f", s.Metric, s.Requests)
		if s.PerPosted != nil {
			fmt.Fprintf(&b, ", %.3f per posted message", *s.PerPosted)
		}
		if s.PerConsumed != nil {
			fmt.Fprintf(&b, ", %.3f per consumed message", *s.PerConsumed)
		}
		b.WriteString("\n")
		if len(s.ByVerb) > 0 {
			b.WriteString("  by verb:")
			for _, verb := range slices.Sorted(maps.Keys(s.ByVerb)) {
				fmt.Fprintf(&b, " %s %.0f", verb, s.ByVerb[verb])
			}
			b.WriteString("\n")
		}
	}
	for _, warn := range rep.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", warn)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// errorList formats errors by class as "503:2 net:1", or "-".
func errorList(errs map[string]int64) string {
	if len(errs) == 0 {
		return "-"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(errs)) {
		parts = append(parts, fmt.Sprintf("%s:%d", k, errs[k]))
	}
	return strings.Join(parts, " ")
}
