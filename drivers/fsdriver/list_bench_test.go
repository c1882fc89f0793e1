package fsdriver

import (
	"context"
	"fmt"
	"testing"

	"github.com/cistern-mq/cistern/drivers"
)

// BenchmarkListPage lists one page of 10 keys of a 20-key prefix: alone in
// its container (the baseline), beside many keys of other prefixes (the
// catalog of other projects), and as a page in the middle of one large
// prefix (one project with many queues). Read the ratios to the baseline:
// a page should cost about what the baseline does, whatever else the
// container holds. Only exported API is used, so the same file measures
// any version of the driver.
func BenchmarkListPage(b *testing.B) {
	const others = 3000
	ctx := context.Background()
	fill := func(b *testing.B, s *Store, c, project string, n int) {
		for i := range n {
			if err := s.Put(ctx, c, fmt.Sprintf("catalog/%s/q%06d", project, i), []byte("{}"), nil); err != nil {
				b.Fatal(err)
			}
		}
	}
	page := func(b *testing.B, s *Store, c, project string, marker int) {
		prefix := "catalog/" + project + "/"
		o := &drivers.ListOptions{Prefix: prefix, Marker: fmt.Sprintf("%sq%06d", prefix, marker), Limit: 10}
		b.ResetTimer()
		for b.Loop() {
			p, err := s.List(ctx, c, o)
			if err != nil || len(p.Objects) != 10 {
				b.Fatalf("List = %d keys, %v", len(p.Objects), err)
			}
		}
	}
	b.Run("baseline", func(b *testing.B) {
		s, _ := newStore(b)
		_ = s.CreateContainer(ctx, "c")
		fill(b, s, "c", "small", 20)
		page(b, s, "c", "small", 4)
	})
	b.Run(fmt.Sprintf("beside-%d-other-keys", others), func(b *testing.B) {
		s, _ := newStore(b)
		_ = s.CreateContainer(ctx, "c")
		fill(b, s, "c", "small", 20)
		fill(b, s, "c", "big", others)
		page(b, s, "c", "small", 4)
	})
	b.Run(fmt.Sprintf("in-a-prefix-of-%d", others), func(b *testing.B) {
		s, _ := newStore(b)
		_ = s.CreateContainer(ctx, "c")
		fill(b, s, "c", "big", others)
		page(b, s, "c", "big", others/2)
	})
}
