package index

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cistern-mq/cistern/drivers"
)

// storeSize sums the objects and bytes of every container of s.
func storeSize(t *testing.T, s drivers.Store) (objects int, bytes int64) {
	t.Helper()
	ctx := context.Background()
	cs, err := s.ListContainers(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs.Objects {
		marker := ""
		for {
			p, err := s.List(ctx, c.Key, &drivers.ListOptions{Marker: marker})
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range p.Objects {
				objects++
				bytes += o.Size
			}
			if p.Next == "" {
				break
			}
			marker = p.Next
		}
	}
	return objects, bytes
}

// TestStoreSizeFollowsLiveData: messages posted and deleted over many
// queues, with 1% kept alive for long, leave a store whose size follows
// the live data: the journal is folded and trimmed, and folds copy only
// live bodies into body objects, so dead messages cost nothing once the
// queues have folded twice. CISTERN_GC_MESSAGES scales it (1,000,000 for
// the number in docs/performance.md; 100,000 by default).
func TestStoreSizeFollowsLiveData(t *testing.T) {
	total, queues := 100_000, 100
	if v, err := strconv.Atoi(os.Getenv("CISTERN_GC_MESSAGES")); err == nil && v > 0 {
		total, queues = v, 1000
	}
	if testing.Short() {
		total = 20_000
	}
	ctx := context.Background()
	mem := newMem()
	clk := newFakeClock()
	e := openEngine(t, mem, clk, nil)
	body := make([]byte, 200)
	for i := range body {
		body[i] = 'a' + byte(i%26)
	}
	var liveBytes int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, queues)
	for qi := range queues {
		wg.Go(func() {
			ref := QueueRef{Project: "p", Name: fmt.Sprintf("q%04d", qi)}
			for done := 0; done < total/queues; {
				n := min(100, total/queues-done)
				msgs := make([]NewMessage, n)
				for i := range msgs {
					msgs[i] = NewMessage{Body: append([]byte(fmt.Sprintf(`{"q":%d,"i":%d,"b":"`, qi, done+i)), append(body, `"}`...)...), TTL: 3600}
				}
				ids, err := e.Post(ctx, ref, "c", msgs)
				if err != nil {
					errs <- err
					return
				}
				// Keep one in a hundred; delete the rest.
				var dead []string
				for i, id := range ids {
					if (done+i)%100 == 0 {
						mu.Lock()
						liveBytes += int64(len(msgs[i].Body))
						mu.Unlock()
					} else {
						dead = append(dead, id)
					}
				}
				if err := e.DeleteMessages(ctx, ref, dead); err != nil {
					errs <- err
					return
				}
				done += n
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	objsBefore, bytesBefore := storeSize(t, mem)
	// Folds by time, twice (a fold releases what the one before it
	// holds), then the trim.
	for range 3 {
		clk.Advance(2 * time.Minute)
		e.Janitor()
		e.waitFlushers(time.Minute)
	}
	e.Janitor()
	objs, bytes := storeSize(t, mem)
	jobjs, jsecs := e.journal.stats()
	t.Logf("%d messages over %d queues, %d kept alive (%d body bytes): store %d objects, %d bytes before folds; %d objects, %d bytes after (%.2f× the live bodies); journal %d objects, %d sections",
		total, queues, total/100, liveBytes, objsBefore, bytesBefore, objs, bytes, float64(bytes)/float64(liveBytes), jobjs, jsecs)
	if jobjs != 0 || jsecs != 0 {
		t.Errorf("journal not trimmed: %d objects, %d sections left", jobjs, jsecs)
	}
	// Live bodies, plus per queue a catalog entry, two snapshots (each
	// naming the live messages) and a body object: within a small
	// multiple of the live data, whatever the dead data was.
	if limit := 4*liveBytes + int64(queues)*2048; bytes > limit {
		t.Errorf("store holds %d bytes for %d live body bytes (limit %d): dead data is kept", bytes, liveBytes, limit)
	}
	// Everything kept alive is still there, with its body.
	for qi := range 3 {
		ref := QueueRef{Project: "p", Name: fmt.Sprintf("q%04d", qi)}
		msgs, err := e.List(ctx, ref, ListOptions{Limit: 20, Echo: true})
		if err != nil || len(msgs) != min(20, total/queues/100) {
			t.Fatalf("%s lists %d, %v; want the kept messages", ref, len(msgs), err)
		}
		for _, m := range msgs {
			if len(m.Body) < len(body) {
				t.Fatalf("%s: message %s body %q", ref, m.ID, m.Body)
			}
		}
	}
}
