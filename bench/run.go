package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// scrapeTimeout bounds one /metrics scrape, so that a slow exposition
// cannot hold up the start of the window.
const scrapeTimeout = 5 * time.Second

// setupConcurrency is how many queues are created or deleted at once.
const setupConcurrency = 16

// Run runs the benchmark cfg describes and returns its report. It returns
// an error only when the run cannot start: cfg is invalid, or a queue
// cannot be created. Everything that goes wrong later is in the report.
//
// Run never takes longer than cfg.Deadline(): at that point, or when ctx
// is cancelled, requests in flight are cut off (and counted as aborted).
// The queues are then deleted with whatever time is left.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	started := time.Now()
	deadline := started.Add(cfg.Deadline())
	hard, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	// Teardown outlives an interrupt (ctx) but not the deadline.
	cleanup, cancelCleanup := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	defer cancelCleanup()

	r := newRun(cfg, hard)
	defer r.transport.CloseIdleConnections()
	rep := &Report{Config: cfg, Started: started.UTC()}
	for i := range cfg.Queues {
		rep.Queues = append(rep.Queues, cfg.QueueName(i))
	}

	r.progress(PhaseSetup)
	if err := r.forEachQueue(hard, rep.Queues, createQueue); err != nil {
		if !cfg.Keep {
			_ = r.forEachQueue(cleanup, rep.Queues, (*Client).DeleteQueue)
		}
		return nil, fmt.Errorf("creating the queues: %w", err)
	}

	// Scrape once before the load: a server without the counter (the
	// Python Zaqar has no /metrics) is then not asked again, and the
	// window's scrapes reuse a warm connection.
	if cfg.MetricsURL != "" {
		if s := <-r.scrapeAsync(hard); s.err != nil || !s.sample.Found {
			rep.Warnings = append(rep.Warnings, "store requests not reported: "+describeScrape(s))
			r.cfg.MetricsURL = ""
		}
	}

	var wg sync.WaitGroup
	tallies := r.startWorkers(&wg)

	r.progress(PhaseWarmup)
	if cfg.Warmup > 0 {
		t := time.NewTimer(cfg.Warmup)
		select {
		case <-t.C:
		case <-hard.Done():
		}
		t.Stop()
	}

	r.progress(PhaseMeasure)
	before := r.scrapeAsync(hard)
	ws := r.openWindow()
	rep.Stopped = r.awaitEnd(ctx, hard)
	we := r.closeWindow()
	after := r.scrapeAsync(hard)

	r.progress(PhaseDrain)
	wg.Wait()
	r.progress(PhaseTeardown)
	if !cfg.Keep {
		if err := r.forEachQueue(cleanup, rep.Queues, (*Client).DeleteQueue); err != nil {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("deleting the queues: %v", err))
			if qe, ok := err.(*queueErrors); ok {
				rep.TeardownErrors = qe.byClass
			}
		}
	}

	total := newTally()
	for _, t := range tallies {
		total.merge(t)
	}
	rep.fill(total, time.Duration(we-ws))
	if cfg.Messages > 0 && rep.Stopped != "messages" {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("stopped by %s before %d messages were posted and consumed", rep.Stopped, cfg.Messages))
	}
	rep.fillStore(<-before, <-after)
	return rep, nil
}

// run is the state the workers of one Run share.
type run struct {
	cfg       Config
	transport *http.Transport
	hc        *http.Client
	hard      context.Context // the deadline; every request runs under it
	stop      chan struct{}   // closed when the window closes: start nothing new
	base      time.Time       // origin of now()

	// The window, in now() units. Each is 0 until its moment, -1 while
	// it is being stamped, then the time (see stamp and readStamp).
	windowStart atomic.Int64
	windowEnd   atomic.Int64

	// Message-count mode (cfg.Messages > 0).
	budget        atomic.Int64 // messages producers may still post in the window
	posted        atomic.Int64 // messages posted in the window
	consumed      atomic.Int64 // messages consumed in the window
	producersDone chan struct{}
	consumersDone chan struct{}
	doneOnce      [2]sync.Once
}

func newRun(cfg Config, hard context.Context) *run {
	workers := cfg.Producers + cfg.Consumers + cfg.Observers
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// One keep-alive connection per worker, plus some for setup and
	// the scrapes.
	tr.MaxIdleConns = workers + setupConcurrency + 2
	tr.MaxIdleConnsPerHost = tr.MaxIdleConns
	r := &run{
		cfg:           cfg,
		transport:     tr,
		hc:            &http.Client{Transport: tr},
		hard:          hard,
		stop:          make(chan struct{}),
		base:          time.Now(),
		producersDone: make(chan struct{}),
		consumersDone: make(chan struct{}),
	}
	r.budget.Store(cfg.Messages)
	if cfg.Producers == 0 {
		r.done(0)
	}
	if cfg.Consumers == 0 {
		r.done(1)
	}
	return r
}

// now is the time since the run began, in nanoseconds; never 0.
func (r *run) now() int64 { return int64(time.Since(r.base)) + 1 }

func (r *run) progress(p Phase) {
	if r.cfg.Progress != nil {
		r.cfg.Progress(p)
	}
}

// done marks the producers (0) or the consumers (1) as having reached
// the message count.
func (r *run) done(role int) {
	ch := [2]chan struct{}{r.producersDone, r.consumersDone}[role]
	r.doneOnce[role].Do(func() { close(ch) })
}

// awaitEnd waits for the end of the window and says why it ended.
func (r *run) awaitEnd(ctx, hard context.Context) string {
	t := time.NewTimer(r.cfg.Duration)
	defer t.Stop()
	var targets <-chan struct{} // nil (never ready) unless counting messages
	if r.cfg.Messages > 0 {
		both := make(chan struct{})
		go func() {
			defer close(both)
			select {
			case <-r.producersDone:
			case <-hard.Done():
				return
			}
			select {
			case <-r.consumersDone:
			case <-hard.Done():
			}
		}()
		targets = both
	}
	select {
	case <-t.C:
		return "duration"
	case <-targets:
		if hard.Err() == nil {
			return "messages"
		}
	case <-hard.Done():
	}
	if ctx.Err() != nil {
		return "interrupted"
	}
	return "deadline"
}

// stamp sets a window boundary to the current time and returns it. It
// publishes -1 before reading the clock, so that a reader (readStamp)
// that still sees 0 knows the boundary is later than anything it read
// the clock for before.
func (r *run) stamp(b *atomic.Int64) int64 {
	b.Store(-1)
	t := r.now()
	b.Store(t)
	return t
}

// readStamp returns a window boundary: 0 if it has not been reached,
// otherwise its time.
func readStamp(b *atomic.Int64) int64 {
	for {
		if t := b.Load(); t >= 0 {
			return t
		}
		runtime.Gosched() // being stamped: a matter of nanoseconds
	}
}

// openWindow starts the measured window and returns its start.
func (r *run) openWindow() int64 { return r.stamp(&r.windowStart) }

// closeWindow ends the measured window, stops the workers from starting
// anything new, and returns the end.
func (r *run) closeWindow() int64 {
	we := r.stamp(&r.windowEnd)
	close(r.stop)
	return we
}

// windowOpen reports whether the window had opened at the time the
// caller read the clock last.
func (r *run) windowOpen() bool { return readStamp(&r.windowStart) != 0 }

// inWindow reports whether an operation that ran from start to end (now()
// values read before and after it) falls in the measured window. The
// caller reads the window after the operation, so a start of 0 means the
// window opened after the operation began, and an end of 0 that it has
// not closed yet.
func (r *run) inWindow(start, end int64) bool {
	ws := readStamp(&r.windowStart)
	if ws == 0 || start < ws {
		return false
	}
	we := readStamp(&r.windowEnd)
	return we == 0 || end <= we
}

// stopped reports whether the window has closed or the deadline passed.
func (r *run) stopped() bool {
	select {
	case <-r.stop:
		return true
	case <-r.hard.Done():
		return true
	default:
		return false
	}
}

// pause waits for d, or less if the run stops.
func (r *run) pause(d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.stop:
	case <-r.hard.Done():
	}
}

// scrapeAsync scrapes the store counter in the background; the channel
// yields the sample, or the zero sample and an error.
func (r *run) scrapeAsync(hard context.Context) <-chan scrape {
	ch := make(chan scrape, 1)
	if r.cfg.MetricsURL == "" {
		ch <- scrape{err: errNoMetrics}
		return ch
	}
	go func() {
		ctx, cancel := context.WithTimeout(hard, scrapeTimeout)
		defer cancel()
		s, err := ScrapeCounter(ctx, r.hc, r.cfg.MetricsURL, StoreMetric)
		ch <- scrape{s, err}
	}()
	return ch
}

type scrape struct {
	sample CounterSample
	err    error
}

var errNoMetrics = errors.New("no metrics url")

// describeScrape says why a scrape is of no use.
func describeScrape(s scrape) string {
	if s.err != nil {
		return s.err.Error()
	}
	return "no " + StoreMetric + " in the exposition"
}

// forEachQueue runs f on every queue, a few at a time; when some fail
// it returns a *queueErrors counting them by class.
func (r *run) forEachQueue(ctx context.Context, queues []string, f func(*Client, context.Context, string) error) error {
	c := NewClient(r.hc, r.cfg.URL, r.cfg.Project, r.cfg.Token)
	sem := make(chan struct{}, setupConcurrency)
	errs := make([]error, len(queues))
	var wg sync.WaitGroup
	for i, q := range queues {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = f(c, ctx, q)
		})
	}
	wg.Wait()
	if qe := newQueueErrors(errs); qe != nil {
		return qe
	}
	return nil
}

func createQueue(c *Client, ctx context.Context, q string) error {
	_, err := c.CreateQueue(ctx, q)
	return err
}
