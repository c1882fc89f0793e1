package fsdriver

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/cistern-mq/cistern/drivers"
	"github.com/cistern-mq/cistern/drivers/drivertest"
)

// Listings stay exact while puts and deletes change directories large
// enough to be cached: every page, from every marker, against a model.
func TestListLargeDirectoriesAgainstModel(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	c := drivertest.NewContainer(t, s)
	rng := rand.New(rand.NewPCG(1, 2))
	long := strings.Repeat("L", 70) // past chunkLen once escaped
	names := func() string {
		switch rng.IntN(6) {
		case 0:
			return fmt.Sprintf("p/%s%03d", long, rng.IntN(40))
		case 1:
			return fmt.Sprintf("p/q%03d/x", rng.IntN(30))
		case 2:
			return "p/" + long
		default:
			return fmt.Sprintf("p/q%03d", rng.IntN(200))
		}
	}
	model := map[string]bool{}
	check := func(step int) {
		t.Helper()
		want := slices.Sorted(func(yield func(string) bool) {
			for k := range model {
				if !yield(k) {
					return
				}
			}
		})
		limit := 1 + rng.IntN(40)
		var got []string
		marker := ""
		for {
			p, err := s.List(ctx, c, &drivers.ListOptions{Prefix: "p/", Marker: marker, Limit: limit})
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range p.Objects {
				got = append(got, o.Key)
			}
			if p.Next == "" {
				break
			}
			marker = p.Next
		}
		if !slices.Equal(got, want) {
			t.Fatalf("step %d, limit %d: listed %d keys, want %d\n got %.300q\nwant %.300q", step, limit, len(got), len(want), got, want)
		}
		// Markers that are not keys: one from inside the listing, one that
		// is exactly where a chunk directory starts, some outside the prefix.
		markers := []string{"p/" + long[:chunkLen/3], "a", "p", "p0", "q"}
		if len(want) > 0 {
			markers = append(markers, want[rng.IntN(len(want))]+"\x01")
		}
		for _, m := range markers {
			p, err := s.List(ctx, c, &drivers.ListOptions{Prefix: "p/", Marker: m, Limit: 3})
			if err != nil {
				t.Fatal(err)
			}
			i, _ := slices.BinarySearch(want, m)
			w := want[i:min(i+3, len(want))]
			var g []string
			for _, o := range p.Objects {
				g = append(g, o.Key)
			}
			if !slices.Equal(g, w) {
				t.Fatalf("step %d: after %q got %q, want %q", step, m, g, w)
			}
		}
	}
	for step := range 400 {
		k := names()
		if rng.IntN(3) == 0 {
			if err := s.Delete(ctx, c, k); err != nil {
				t.Fatal(err)
			}
			delete(model, k)
		} else {
			if err := s.Put(ctx, c, k, nil, nil); err != nil {
				t.Fatal(err)
			}
			model[k] = true
		}
		if step%10 == 9 {
			check(step)
		}
	}
	if s.cache.names == 0 {
		t.Error("no directory was large enough to be cached: the test does not test the cache")
	}
}
