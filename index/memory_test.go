package index

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/cistern-mq/cistern/drivers/drivertest"
)

// A loaded queue holding one message costs at most 4 KiB of heap: the
// memory a node needs follows its active queues, and any tenant can make
// queues. Measured as the heap the engine gives back when it unloads the
// queues (the store and the shared body cache stay).
func TestMemoryPerLoadedQueue(t *testing.T) {
	const n = 2000
	clk := newFakeClock()
	e := openEngine(t, newMem(), clk, nil)
	for i := range n {
		ref := QueueRef{Project: "p", Name: fmt.Sprintf("q%05d", i)}
		if _, err := e.Post(ctx, ref, "client", bodies(1, "x")); err != nil {
			t.Fatal(err)
		}
	}
	if e.Loaded() != n {
		t.Fatalf("%d queues loaded, want %d", e.Loaded(), n)
	}
	loaded := heapInUse()
	clk.Advance(time.Hour)
	// The last flusher may still be finishing its loop.
	drivertest.Eventually(t, "every queue unloaded", func() bool {
		e.Janitor()
		return e.Loaded() == 0
	})
	unloaded := heapInUse()
	runtime.KeepAlive(e)
	per := float64(loaded-unloaded) / n
	t.Logf("%.0f B per loaded queue with one message", per)
	if per > 4096 {
		t.Errorf("a loaded queue with one message costs %.0f B, want at most 4096", per)
	}
}
