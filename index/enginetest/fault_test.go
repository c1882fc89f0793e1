package enginetest

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/cistern-mq/cistern/drivers"
	"github.com/cistern-mq/cistern/drivers/faultstore"
	"github.com/cistern-mq/cistern/drivers/fsdriver"
	"github.com/cistern-mq/cistern/drivers/memdriver"
)

// The scenarios through faults the engine must hide from its callers
// entirely (docs/testing.md): log writes that fail and are retried, log
// writes that land without an answer (the retry finds its own object),
// and latency. Any error reaching a scenario fails it.
func withFaults(s drivers.Store) *faultstore.Store {
	f := faultstore.New(s, faultstore.Options{Seed: 17, Sleep: func(ctx context.Context, _ time.Duration) error {
		runtime.Gosched() // latency without the wait: requests interleave
		return ctx.Err()
	}})
	put := []faultstore.Verb{faultstore.Put}
	for _, prefix := range []string{"log/", "journal/", "body/"} {
		f.Add(faultstore.Rule{Verbs: put, KeyPrefix: prefix, Prob: 0.03})
		f.Add(faultstore.Rule{Verbs: put, KeyPrefix: prefix, Prob: 0.05, Effect: faultstore.LostAnswer})
	}
	f.Add(faultstore.Rule{Prob: 0.2, Effect: faultstore.Delay, Latency: time.Millisecond})
	return f
}

func TestFaultsMem(t *testing.T) {
	f := withFaults(memdriver.New())
	Run(t, f, false)
	t.Logf("faults injected: %v", f.Injected())
	if f.Injected()[faultstore.LostAnswer] == 0 {
		t.Error("no lost answer injected")
	}
}

func TestFaultsFS(t *testing.T) {
	s, err := fsdriver.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f := withFaults(s)
	Run(t, f, false)
	t.Logf("faults injected: %v", f.Injected())
}
