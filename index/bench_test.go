package index_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cistern-mq/cistern/drivers"
	"github.com/cistern-mq/cistern/drivers/fsdriver"
	"github.com/cistern-mq/cistern/drivers/memdriver"
	. "github.com/cistern-mq/cistern/index"
)

var (
	benchLatency = flag.Duration("bench.put-latency", 5*time.Millisecond, "simulated latency of a store put in the request-count benchmarks")
	benchLive    = flag.Int("bench.live", 1_000_000, "live messages in the memory and recovery benchmarks")
)

// slowStore is the mem driver with a fixed latency on every put, the way
// a remote store answers.
func slowStore(latency time.Duration) *memdriver.Store {
	m := memdriver.New()
	m.SetPutHook(func(ctx context.Context, _, _ string) {
		select {
		case <-time.After(latency):
		case <-ctx.Done():
		}
	})
	return m
}

func benchEngine(b *testing.B, s drivers.Store) *Engine {
	e, err := Open(context.Background(), Options{Store: s, Logger: zerolog.Nop(), NoJanitor: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.Close() })
	return e
}

var body1K = json.RawMessage(`{"data":"` + fmt.Sprintf("%01000d", 0) + `"}`)

// BenchmarkRequestsPerMessage reports store requests per message for post,
// claim and delete, with 1, 16 and 64 concurrent callers, against a store
// whose puts take -bench.put-latency (5 ms).
func BenchmarkRequestsPerMessage(b *testing.B) {
	for _, conc := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("post/c=%d", conc), func(b *testing.B) {
			mem := slowStore(*benchLatency)
			e := benchEngine(b, mem)
			ref := QueueRef{Project: "bench", Name: "q"}
			if _, err := e.CreateQueue(context.Background(), ref, nil); err != nil {
				b.Fatal(err)
			}
			before := total(mem)
			parallel(b, conc, func() error {
				_, err := e.Post(context.Background(), ref, "c", []NewMessage{{Body: body1K, TTL: 3600}})
				return err
			})
			b.ReportMetric(float64(total(mem)-before)/float64(b.N), "requests/msg")
		})
		b.Run(fmt.Sprintf("claim+delete/c=%d", conc), func(b *testing.B) {
			mem := slowStore(*benchLatency)
			e := benchEngine(b, mem)
			ref := QueueRef{Project: "bench", Name: "q"}
			batch := make([]NewMessage, 100)
			for i := range batch {
				batch[i] = NewMessage{Body: body1K, TTL: 3600}
			}
			for n := 0; n < b.N; n += len(batch) {
				if _, err := e.Post(context.Background(), ref, "c", batch); err != nil {
					b.Fatal(err)
				}
			}
			before := total(mem)
			var consumed atomic.Int64
			parallel(b, conc, func() error {
				// One claim of one message and its delete per iteration.
				c, err := e.Claim(context.Background(), ref, ClaimOptions{TTL: 300, Grace: 60, Limit: 1})
				if err != nil || c == nil {
					return err
				}
				consumed.Add(1)
				return e.DeleteMessage(context.Background(), ref, c.Messages[0].ID, c.ID)
			})
			b.ReportMetric(float64(total(mem)-before)/float64(max(consumed.Load(), 1)), "requests/msg")
		})
	}
}

func total(m *memdriver.Store) int64 {
	var n int64
	for _, v := range m.Counts() {
		n += v
	}
	return n
}

// parallel runs op b.N times from conc goroutines.
func parallel(b *testing.B, conc int, op func() error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for range conc {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				if err := op(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
}

// BenchmarkLiveMessages fills one queue with -bench.live 1 KiB messages on
// the fs driver, reports the index's heap per live message (bodies not
// cached), then reports how long recovering the queue from the store takes.
func BenchmarkLiveMessages(b *testing.B) {
	for range b.N {
		dir := b.TempDir()
		fs, err := fsdriver.New(dir)
		if err != nil {
			b.Fatal(err)
		}
		opts := Options{Store: fs, Logger: zerolog.Nop(), NoJanitor: true, BodyCacheBytes: 1 << 16,
			SnapshotLogs: 1 << 30, SnapshotInterval: time.Hour}
		ref := QueueRef{Project: "bench", Name: "big"}
		heap0 := heapInUse()
		e, err := Open(context.Background(), opts)
		if err != nil {
			b.Fatal(err)
		}
		batch := make([]NewMessage, 1000)
		for i := range batch {
			batch[i] = NewMessage{Body: body1K, TTL: 86400}
		}
		for n := 0; n < *benchLive; n += len(batch) {
			if _, err := e.Post(context.Background(), ref, "producer", batch); err != nil {
				b.Fatal(err)
			}
		}
		heap1 := heapInUse()
		b.ReportMetric(float64(heap1-heap0)/float64(*benchLive), "index-bytes/msg")
		b.ReportMetric(float64(heap1-heap0)/(1<<20), "index-MiB")
		// Close writes no snapshot: recovery replays every log, the worst
		// case. Then measure again with a snapshot.
		e.Close()
		for _, snap := range []bool{false, true} {
			if snap {
				e, err = Open(context.Background(), Options{Store: fs, Logger: zerolog.Nop(), NoJanitor: true,
					SnapshotLogs: 1, BodyCacheBytes: 1 << 16})
				if err != nil {
					b.Fatal(err)
				}
				// One post makes the engine load the queue and write a snapshot.
				if _, err := e.Post(context.Background(), ref, "producer", batch[:1]); err != nil {
					b.Fatal(err)
				}
				e.Close()
			}
			e, err = Open(context.Background(), opts)
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			st, err := e.Stats(context.Background(), ref)
			took := time.Since(start)
			if err != nil || st.Total < *benchLive {
				b.Fatalf("recovered %+v, %v", st, err)
			}
			name := "recovery-s(logs)"
			if snap {
				name = "recovery-s(snapshot)"
			}
			b.ReportMetric(took.Seconds(), name)
			e.Close()
		}
	}
}

func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}
