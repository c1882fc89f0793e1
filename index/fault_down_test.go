package index_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/cistern-mq/cistern/drivers"
	"github.com/cistern-mq/cistern/drivers/drivertest"
	"github.com/cistern-mq/cistern/drivers/faultstore"
	"github.com/cistern-mq/cistern/drivers/memdriver"
	"github.com/cistern-mq/cistern/index"
)

// TestFaultDownMemoryBounded: while the store is down (or full) and
// clients keep posting, every post fails with an error they may retry
// (drivers.ErrUnavailable: the server's 503), and the heap does not grow
// with the number of failed posts. Once the store is back, the same engine
// serves again without a restart, and every acknowledged post is there
// with its body.
func TestFaultDownMemoryBounded(t *testing.T) {
	for _, mode := range []string{"down", "full"} {
		t.Run(mode, func(t *testing.T) {
			base := memdriver.New()
			f := faultstore.New(base, faultstore.Options{Seed: 5})
			e := openFault(t, f)
			refs := []index.QueueRef{{Project: "p", Name: "d1"}, {Project: "p", Name: "d2"}}
			acked := map[string]string{}
			for i, ref := range refs {
				b := fmt.Sprintf(`"before %d"`, i)
				acked[ref.Name+"/"+postOne(t, e, ref, b)] = b
			}
			if mode == "down" {
				f.SetDown(true)
			} else {
				f.SetFull(true)
			}
			pad := strings.Repeat("x", 1000)
			// posts sends n posts of a 1 KB body from 4 clients, each of
			// which must fail with a retry-able error.
			posts := func(from, n int) {
				var wg sync.WaitGroup
				for c := range 4 {
					wg.Go(func() {
						for i := from + c; i < from+n; i += 4 {
							b := json.RawMessage(fmt.Sprintf(`{"i":%d,"pad":%q}`, i, pad))
							_, err := e.Post(ctx, refs[i%2], "c", []index.NewMessage{{Body: b, TTL: 3600}})
							if !errors.Is(err, drivers.ErrUnavailable) {
								t.Errorf("post %d while the store is %s: %v, want unavailable", i, mode, err)
								return
							}
						}
					})
				}
				wg.Wait()
			}
			posts(0, 500) // warm up: whatever is allocated once
			before := heapInUse()
			posts(500, 3000) // 3 MB of bodies
			after := heapInUse()
			// A bound of 1 MiB catches anything that keeps 256 bytes per
			// failed post.
			if grew := after - before; grew > 1<<20 {
				t.Errorf("heap grew by %d bytes over 3000 failed posts of 1 KB while the store was %s", grew, mode)
			}
			if t.Failed() {
				return
			}
			f.Clear()
			drivertest.Eventually(t, "a post to succeed once the store is back", func() bool {
				_, err := e.Post(ctx, refs[0], "c", []index.NewMessage{{Body: json.RawMessage(`"after"`), TTL: 3600}})
				return err == nil
			})
			for _, ref := range refs {
				ms, err := e.List(ctx, ref, index.ListOptions{Limit: 100, Echo: true, IncludeClaimed: true})
				if err != nil {
					t.Fatal(err)
				}
				// Only what was acknowledged before the store went away is
				// checked here; the post after it has its own test
				// (TestFaultRejectedBodyNeverServed).
				for _, m := range ms {
					want, ok := acked[ref.Name+"/"+m.ID]
					if ok && string(m.Body) != want {
						t.Errorf("%s: %s reads %.40s, want %s", ref.Name, m.ID, m.Body, want)
					}
					delete(acked, ref.Name+"/"+m.ID)
				}
			}
			for id := range acked {
				t.Errorf("acknowledged post %s lost", id)
			}
		})
	}
}
