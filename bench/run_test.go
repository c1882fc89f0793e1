package bench

import (
	"context"
	"encoding/json"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testConfig is a small run against the fake at url: no warm-up, a
// short window, and a deadline far enough away not to matter unless a
// test makes the server hang.
func testConfig(url string) Config {
	cfg := DefaultConfig()
	cfg.URL = url
	cfg.MetricsURL = url + "/metrics"
	cfg.Duration = 200 * time.Millisecond
	cfg.Grace = 20 * time.Second
	cfg.EmptyWait = time.Millisecond
	return cfg
}

func mustRun(t *testing.T, ctx context.Context, cfg Config) *Report {
	t.Helper()
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return rep
}

func opNames(rep *Report) []string {
	var names []string
	for op := range maps.Keys(rep.Ops) {
		names = append(names, string(op))
	}
	slices.Sort(names)
	return names
}

func TestRunDuration(t *testing.T) {
	f := newFakeZaqar(t)
	cfg := testConfig(f.URL())
	cfg.Queues, cfg.Producers, cfg.Consumers, cfg.Observers, cfg.Batch = 2, 2, 2, 1, 5
	rep := mustRun(t, t.Context(), cfg)

	if rep.Stopped != "duration" || rep.Window < cfg.Duration.Seconds() {
		t.Errorf("stopped by %q after a %.3fs window, want duration and at least %v", rep.Stopped, rep.Window, cfg.Duration)
	}
	if got, want := opNames(rep), []string{"claim", "delete", "list", "post"}; !slices.Equal(got, want) {
		t.Errorf("ops %v, want %v", got, want)
	}
	for op, o := range rep.Ops {
		if o.Requests != o.OK || len(o.Errors) > 0 {
			t.Errorf("%s: %d requests, %d ok, errors %v", op, o.Requests, o.OK, o.Errors)
		}
		if want := float64(o.Requests) / rep.Window; math.Abs(o.PerSecond-want) > 0.001 {
			t.Errorf("%s: %.3f req/s, want %.3f", op, o.PerSecond, want)
		}
	}
	posted, consumed, queues, clients := f.snapshot()
	if rep.Posted.Messages > posted || rep.Posted.Messages%int64(cfg.Batch) != 0 {
		t.Errorf("reported %d posted; the server stored %d, in batches of %d", rep.Posted.Messages, posted, cfg.Batch)
	}
	if rep.Consumed.Messages > consumed || rep.Consumed.Messages > rep.Claimed+int64(cfg.Consumers*cfg.ClaimLimit) {
		t.Errorf("reported %d consumed, %d claimed; the server deleted %d", rep.Consumed.Messages, rep.Claimed, consumed)
	}
	if rep.Consumed.Messages != rep.Ops[OpDelete].OK {
		t.Errorf("consumed %d, successful deletes %d", rep.Consumed.Messages, rep.Ops[OpDelete].OK)
	}
	f.mu.Lock()
	puts, deletes := f.puts, f.deletes
	f.mu.Unlock()
	if queues != 0 || puts != 2 || deletes != 2 {
		t.Errorf("%d queues left, %d PUT, %d DELETE; want 0, 2, 2", queues, puts, deletes)
	}
	if want := cfg.Producers + cfg.Consumers + cfg.Observers + 1; clients < want {
		t.Errorf("%d Client-IDs seen, want one per worker and one for setup: %d", clients, want)
	}
}

func near(a, b float64) bool { return a-b < 1e-6*max(1, b) && b-a < 1e-6*max(1, b) }

func TestRunMessages(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(*Config)
		prefill int // messages posted to queue 0 before the run
		stopped string
		ops     []string
	}{
		{"produce and claim", func(c *Config) { c.Producers, c.Consumers, c.Batch = 3, 2, 7 }, 0, "messages", []string{"claim", "delete", "post"}},
		{"produce and pop", func(c *Config) { c.Producers, c.Consumers, c.Pop = 2, 2, 5 }, 0, "messages", []string{"pop", "post"}},
		{"produce only", func(c *Config) { c.Producers, c.Consumers, c.Batch = 4, 0, 3 }, 0, "messages", []string{"post"}},
		{"consume only, existing queue", func(c *Config) { c.Producers, c.Consumers, c.ClaimLimit = 0, 3, 4 }, 150, "messages", []string{"claim", "delete"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeZaqar(t)
			cfg := testConfig(f.URL())
			cfg.Messages = 100
			cfg.Duration = 20 * time.Second // an upper bound only
			tt.setup(&cfg)
			if tt.prefill > 0 {
				c := NewClient(f.srv.Client(), f.URL(), cfg.Project, "")
				if _, err := c.CreateQueue(t.Context(), cfg.QueueName(0)); err != nil {
					t.Fatal(err)
				}
				if err := c.PostMessages(t.Context(), cfg.QueueName(0), messagesDoc(tt.prefill, 10, 60)); err != nil {
					t.Fatal(err)
				}
			}
			rep := mustRun(t, t.Context(), cfg)
			if rep.Stopped != tt.stopped {
				t.Errorf("stopped by %q, want %q", rep.Stopped, tt.stopped)
			}
			if got := opNames(rep); !slices.Equal(got, tt.ops) {
				t.Errorf("ops %v, want %v", got, tt.ops)
			}
			if cfg.Producers > 0 && rep.Posted.Messages != cfg.Messages {
				t.Errorf("posted %d, want exactly %d", rep.Posted.Messages, cfg.Messages)
			}
			if cfg.Consumers > 0 && rep.Consumed.Messages < cfg.Messages {
				t.Errorf("consumed %d, want at least %d", rep.Consumed.Messages, cfg.Messages)
			}
			_, consumed, _, _ := f.snapshot()
			if rep.Consumed.Messages > consumed {
				t.Errorf("reported %d consumed, the server deleted %d", rep.Consumed.Messages, consumed)
			}
		})
	}
}

// TestWarmupExcluded makes every POST fail during the warm-up and none
// after it: the report must show the posts of the window and none of the
// failures.
func TestWarmupExcluded(t *testing.T) {
	f := newFakeZaqar(t, func(f *fakeZaqar) { f.failPosts = true })
	cfg := testConfig(f.URL())
	cfg.Producers, cfg.Consumers, cfg.Messages = 2, 0, 40
	cfg.Duration = 20 * time.Second
	cfg.Warmup = time.Millisecond
	var phases []Phase
	cfg.Progress = func(p Phase) {
		phases = append(phases, p)
		if p != PhaseMeasure {
			return
		}
		select {
		case <-f.firstFail: // the warm-up has sent load
		case <-time.After(10 * time.Second):
			t.Error("no POST during the warm-up")
		}
		f.mu.Lock()
		f.failPosts = false
		f.mu.Unlock()
	}
	rep := mustRun(t, t.Context(), cfg)

	want := []Phase{PhaseSetup, PhaseWarmup, PhaseMeasure, PhaseDrain, PhaseTeardown}
	if !slices.Equal(phases, want) {
		t.Errorf("phases %v, want %v", phases, want)
	}
	f.mu.Lock()
	failed := f.failed
	f.mu.Unlock()
	if failed == 0 {
		t.Fatal("the fake failed no POST")
	}
	post := rep.Ops[OpPost]
	if len(post.Errors) > 0 || post.Requests != post.OK {
		t.Errorf("warm-up failures counted: %+v", post)
	}
	if rep.Posted.Messages != cfg.Messages || rep.Stopped != "messages" {
		t.Errorf("posted %d, stopped by %q; want %d, messages", rep.Posted.Messages, rep.Stopped, cfg.Messages)
	}
}

// TestDeadline checks that a run ends by its deadline when the server
// stops answering.
func TestDeadline(t *testing.T) {
	tests := []struct {
		name     string
		hang     string
		setupErr bool // Run fails: the queues could not be created
		aborted  bool // requests are cut off by the deadline
		warning  bool // the queues could not be deleted
	}{
		{"claims hang", "POST claims", false, true, false},
		{"posts hang", "POST messages", false, true, false},
		{"queue creation hangs", "PUT queue", true, false, false},
		{"teardown hangs", "DELETE queue", false, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeZaqar(t, func(f *fakeZaqar) { f.hang[tt.hang] = true })
			cfg := testConfig(f.URL())
			cfg.Producers, cfg.Consumers = 1, 2
			cfg.Duration, cfg.Grace = 100*time.Millisecond, 300*time.Millisecond
			begin := time.Now()
			rep, err := Run(t.Context(), cfg)
			took := time.Since(begin)
			// The bound is the feature under test, not a speed: the
			// slack covers a loaded machine.
			if limit := cfg.Deadline() + 5*time.Second; took > limit {
				t.Errorf("Run took %v, want at most %v", took, limit)
			}
			select {
			case <-f.hanging:
			default:
				t.Fatalf("no request hung")
			}
			if tt.setupErr {
				if err == nil || !strings.Contains(err.Error(), "deadline") {
					t.Errorf("Run error %v, want a deadline error", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			// Teardown may or may not get a request in after the
			// deadline cut the workers off, so only a hanging DELETE
			// must leave a warning.
			if tt.aborted && rep.Aborted == 0 {
				t.Errorf("no request counted as aborted")
			}
			if tt.warning && len(rep.Warnings) == 0 {
				t.Errorf("no warning about the queues left behind")
			}
		})
	}
}

func TestMessagesCap(t *testing.T) {
	f := newFakeZaqar(t)
	cfg := testConfig(f.URL())
	cfg.Producers, cfg.Consumers, cfg.Messages = 0, 1, 10 // nothing to consume
	rep := mustRun(t, t.Context(), cfg)
	if rep.Stopped != "duration" || len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "before 10 messages") {
		t.Errorf("stopped by %q, warnings %q; want duration and a warning", rep.Stopped, rep.Warnings)
	}
	if rep.EmptyTakes == 0 || rep.Ops[OpClaim].OK != rep.EmptyTakes {
		t.Errorf("%d empty claims of %d; want every claim empty", rep.EmptyTakes, rep.Ops[OpClaim].OK)
	}
}

func TestInterrupt(t *testing.T) {
	f := newFakeZaqar(t)
	cfg := testConfig(f.URL())
	cfg.Duration = time.Minute
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	cfg.Progress = func(p Phase) {
		if p == PhaseMeasure {
			cancel()
		}
	}
	rep := mustRun(t, ctx, cfg)
	if rep.Stopped != "interrupted" {
		t.Errorf("stopped by %q, want interrupted", rep.Stopped)
	}
	if _, _, queues, _ := f.snapshot(); queues != 0 {
		t.Errorf("%d queues left after an interrupt, want them deleted", queues)
	}
}

func TestStoreReport(t *testing.T) {
	t.Run("counter", func(t *testing.T) {
		f := newFakeZaqar(t)
		cfg := testConfig(f.URL())
		cfg.Messages, cfg.Duration = 50, 20*time.Second
		rep := mustRun(t, t.Context(), cfg)
		s := rep.Store
		if s == nil {
			t.Fatalf("no store report; warnings %v", rep.Warnings)
		}
		var sum float64
		for verb, v := range s.ByVerb {
			if verb != "put" && verb != "get" && verb != "delete" {
				t.Errorf("unexpected verb %q", verb)
			}
			sum += v
		}
		if s.Requests <= 0 || sum != s.Requests {
			t.Errorf("store requests %v, by verb %v", s.Requests, s.ByVerb)
		}
		if s.PerPosted == nil || !near(*s.PerPosted, s.Requests/float64(rep.Posted.Messages)) {
			t.Errorf("per posted %v, want %v/%d", s.PerPosted, s.Requests, rep.Posted.Messages)
		}
	})
	for _, tt := range []struct {
		name, status, body, warning string
	}{
		{"no metrics", "404", "", "HTTP 404"},
		{"no counter", "", "go_goroutines 7\n", "no " + StoreMetric},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeZaqar(t, func(f *fakeZaqar) {
				f.metricsStatus, _ = strconv.Atoi(tt.status)
				f.metricsBody = tt.body
			})
			cfg := testConfig(f.URL())
			cfg.Messages, cfg.Duration = 10, 20*time.Second
			rep := mustRun(t, t.Context(), cfg)
			if rep.Store != nil || len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], tt.warning) {
				t.Errorf("store %+v, warnings %q; want none and one about %q", rep.Store, rep.Warnings, tt.warning)
			}
		})
	}
	t.Run("not asked", func(t *testing.T) {
		f := newFakeZaqar(t)
		cfg := testConfig(f.URL())
		cfg.MetricsURL = ""
		cfg.Messages, cfg.Duration = 10, 20*time.Second
		rep := mustRun(t, t.Context(), cfg)
		if rep.Store != nil || len(rep.Warnings) != 0 {
			t.Errorf("store %+v, warnings %q; want neither", rep.Store, rep.Warnings)
		}
	})
}

func TestReportJSON(t *testing.T) {
	f := newFakeZaqar(t)
	cfg := testConfig(f.URL())
	cfg.Token = "secret-token-value"
	cfg.Observers, cfg.Messages, cfg.Duration = 1, 30, 20*time.Second
	rep := mustRun(t, t.Context(), cfg)
	raw, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), cfg.Token) {
		t.Errorf("the JSON report shows the token: %s", raw)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{
		"config.url", "config.producers", "config.duration_s", "config.warmup_s", "config.messages",
		"started", "queues", "window_s", "stopped", "posted.messages", "posted.per_s",
		"consumed.messages", "consumed.per_s", "claimed", "empty_takes", "aborted",
		"ops.post.requests", "ops.post.ok", "ops.post.per_s", "ops.post.latency_ms.p50",
		"ops.post.latency_ms.p90", "ops.post.latency_ms.p99", "ops.post.latency_ms.max",
		"ops.claim.latency_ms.p99", "ops.delete.requests", "ops.list.requests",
		"store.metric", "store.requests", "store.per_posted", "store.per_consumed", "store.by_verb",
	} {
		if _, ok := lookup(doc, path); !ok {
			t.Errorf("JSON report has no %s", path)
		}
	}
	if v, _ := lookup(doc, "config.duration_s"); v != 20.0 {
		t.Errorf("config.duration_s = %v, want 20", v)
	}
	if _, ok := lookup(doc, "ops.pop"); ok {
		t.Errorf("ops.pop present in a claim run")
	}

	var table strings.Builder
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"posted", "consumed", "p99 ms", "post", "claim", "delete", "list", "store requests"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
}

// lookup follows a dotted path through decoded JSON.
func lookup(doc map[string]any, path string) (any, bool) {
	var v any = doc
	for key := range strings.SplitSeq(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[key]; !ok {
			return nil, false
		}
	}
	return v, true
}

func TestInWindow(t *testing.T) {
	r := &run{base: time.Now()}
	if r.inWindow(1, 2) {
		t.Error("counted before the window opened")
	}
	ws := r.openWindow()
	if r.inWindow(ws-1, ws+1) {
		t.Error("counted an operation that began before the window")
	}
	if !r.inWindow(ws, ws+5) {
		t.Error("did not count an operation inside the open window")
	}
	r.stop = make(chan struct{})
	we := r.closeWindow()
	if !r.inWindow(ws, we) || r.inWindow(ws, we+1) {
		t.Error("wrong answer at the end of the window")
	}
}
