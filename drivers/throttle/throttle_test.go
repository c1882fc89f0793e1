package throttle

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cistern-mq/cistern/drivers/drivertest"
	"github.com/cistern-mq/cistern/drivers/memdriver"
)

func TestConformance(t *testing.T) { drivertest.Run(t, New(memdriver.New(), 4)) }

// No more than n requests reach the store at once, and a request whose
// context ends while it waits is not sent.
func TestLimit(t *testing.T) {
	mem := memdriver.New()
	var cur, peak atomic.Int64
	release := make(chan struct{})
	mem.SetPutHook(func(context.Context, string, string) {
		n := cur.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-release
		cur.Add(-1)
	})
	s := New(mem, 3)
	ctx := context.Background()
	if err := s.CreateContainer(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			if err := s.Put(ctx, "c", string(rune('a'+i)), nil, nil); err != nil {
				t.Error(err)
			}
		})
	}
	// Three are in the store; a fourth with an ended context gives up.
	drivertest.Eventually(t, "three puts in the store", func() bool { return mem.Count(memdriver.OpPut) >= 3 })
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Put(cctx, "c", "late", nil, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("a put whose context ended while waiting: %v", err)
	}
	close(release)
	wg.Wait()
	if p := peak.Load(); p != 3 {
		t.Errorf("peak of %d puts in the store at once, want 3", p)
	}
	if n := mem.Count(memdriver.OpPut); n != 10 {
		t.Errorf("%d puts reached the store, want 10", n)
	}
}
