package drivertest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cistern-mq/cistern/drivers"
)

// Concurrencies are the caller counts every driver benchmark runs at.
var Concurrencies = []int{1, 16}

// Bench runs the put, get and list benchmarks against s, each at 1 and 16
// concurrent callers, and reports requests per second.
func Bench(b *testing.B, s drivers.Store) {
	payload := make([]byte, 1024)
	for _, conc := range Concurrencies {
		b.Run(fmt.Sprintf("Put/1KiB/c=%d", conc), func(b *testing.B) {
			c := NewContainer(b, s)
			run(b, conc, func(i int64) error {
				return s.Put(context.Background(), c, fmt.Sprintf("p/%012d", i), payload, nil)
			})
		})
		b.Run(fmt.Sprintf("Get/1KiB/c=%d", conc), func(b *testing.B) {
			c := NewContainer(b, s)
			const keys = 64
			for i := range keys {
				mustPut(b, s, c, fmt.Sprintf("g/%d", i), payload)
			}
			run(b, conc, func(i int64) error {
				_, err := s.Get(context.Background(), c, fmt.Sprintf("g/%d", i%keys), nil)
				return err
			})
		})
		b.Run(fmt.Sprintf("List/100keys/c=%d", conc), func(b *testing.B) {
			c := NewContainer(b, s)
			var wg sync.WaitGroup
			for i := range 100 {
				wg.Go(func() { mustPut(b, s, c, fmt.Sprintf("l/%03d", i), nil) })
			}
			wg.Wait()
			run(b, conc, func(int64) error {
				p, err := s.List(context.Background(), c, &drivers.ListOptions{Prefix: "l/", Limit: 100})
				if err == nil && len(p.Objects) != 100 {
					err = fmt.Errorf("listed %d keys, want 100", len(p.Objects))
				}
				return err
			})
		})
	}
}

// run calls op b.N times from conc goroutines and reports requests/s.
func run(b *testing.B, conc int, op func(i int64) error) {
	b.Helper()
	var next atomic.Int64
	var failed atomic.Value
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				if err := op(i); err != nil {
					failed.CompareAndSwap(nil, err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
}
