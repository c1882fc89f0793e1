package bench

import (
	"strings"
	"testing"
)

// A teardown that fails on every queue is counted by error class in the
// report, with one short warning, not one line per queue.
func TestTeardownErrorsCounted(t *testing.T) {
	f := newFakeZaqar(t, func(f *fakeZaqar) { f.failQueueDeletes = true })
	cfg := testConfig(f.URL())
	cfg.Queues = 50
	cfg.Producers, cfg.Consumers = 1, 1
	rep := mustRun(t, t.Context(), cfg)

	if got := rep.TeardownErrors["503"]; got != 50 {
		t.Errorf("teardown_errors[503] = %d, want 50 (all: %v)", got, rep.TeardownErrors)
	}
	var warns []string
	for _, w := range rep.Warnings {
		if strings.HasPrefix(w, "deleting the queues") {
			warns = append(warns, w)
		}
	}
	if len(warns) != 1 {
		t.Fatalf("want one warning about deleting the queues, got %q", rep.Warnings)
	}
	if w := warns[0]; strings.Contains(w, "\n") || !strings.Contains(w, "50 of 50 queues") || !strings.Contains(w, "503×50") {
		t.Errorf("warning %q: want one line counting 50 of 50 queues as 503×50", w)
	}
}

// A failed setup is one line naming the count by class and the first
// error, whatever the number of queues.
func TestSetupErrorOneLine(t *testing.T) {
	f := newFakeZaqar(t, func(f *fakeZaqar) { f.hang = map[string]bool{"PUT queue": true} })
	cfg := testConfig(f.URL())
	cfg.Queues = 20
	cfg.Grace = 300e6 // the hanging PUTs give up at the deadline
	_, err := Run(t.Context(), cfg)
	if err == nil {
		t.Fatal("Run succeeded with every queue creation hanging")
	}
	if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, "20 of 20 queues") || !strings.Contains(msg, "timeout×20") {
		t.Errorf("error %q: want one line counting 20 of 20 queues as timeout×20", msg)
	}
}
