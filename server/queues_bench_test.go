package server

import (
	"context"
	"fmt"
	"testing"

	"github.com/cistern-mq/cistern/index"
)

// BenchmarkQueueListing times, on the fs driver, the requests that read a
// project's catalog: a first page, a name filter that matches nothing (so
// it reads the whole catalog), with_count, and ping, for a project of 10
// queues (the baseline) and one of 1,000 queues beside another project of
// 1,000. Read the ratios to the baseline of the same run.
func BenchmarkQueueListing(b *testing.B) {
	for _, n := range []int{10, 1000} {
		e := newEnv(b, envOpts{})
		ctx := context.Background()
		for _, project := range []string{"demo", "other"} {
			for i := range n {
				if _, err := e.eng.CreateQueue(ctx, index.QueueRef{Project: project, Name: fmt.Sprintf("q%05d", i)}, nil); err != nil {
					b.Fatal(err)
				}
			}
		}
		for _, c := range []struct {
			name, path string
			status     int
		}{
			{"page", "/v2/queues?limit=10", 200},
			{"name-filter", "/v2/queues?name=zzz", 200},
			{"with_count", "/v2/queues?with_count=true", 200},
			{"ping", "/v2/ping", 204},
		} {
			b.Run(fmt.Sprintf("%s/queues=%d", c.name, n), func(b *testing.B) {
				for b.Loop() {
					e.must(req{method: "GET", path: c.path}, c.status)
				}
			})
		}
	}
}
