package index

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"

	"pgregory.net/rapid"

	"github.com/cistern-mq/cistern/drivers"
)

// TestClusterOwnershipModel checks the engine's cluster mode against a
// model: several nodes share one store, ownership of the queue moves
// between them at random, and a node that lost the queue without noticing
// (paused) keeps writing. Whatever it answers, an acknowledged post is
// never lost, a refused one never appears, order holds, and no message is
// in two live claims.
func TestClusterOwnershipModel(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		ctx := context.Background()
		s := newMem()
		clk := newFakeClock()
		truth := newFenceTruth()
		ref := QueueRef{Project: "p", Name: "q"}
		const nodes = 3
		engines := make([]*Engine, nodes)
		fences := make([]*nodeFence, nodes)
		for i := range engines {
			fences[i] = &nodeFence{t: truth, node: fmt.Sprint("n", i)}
			e, err := Open(ctx, Options{Store: s, Clock: clk, Fence: fences[i], NoJanitor: true,
				SnapshotLogs: rapid.IntRange(1, 6).Draw(rt, "snapLogs")})
			if err != nil {
				rt.Fatal(err)
			}
			engines[i] = e
		}
		defer func() {
			for _, e := range engines {
				e.Close()
			}
		}()
		owner := 0
		truth.give(ref, "n0")
		if _, err := engines[0].CreateQueue(ctx, ref, nil); err != nil {
			rt.Fatal(err)
		}
		var acked []string             // bodies acknowledged, in order
		deleted := map[string]bool{}   // bodies deleted
		claimed := map[string]string{} // body -> live claim id
		stale := -1                    // a node that lost the queue but believes it owns it
		n := 0

		rt.Repeat(map[string]func(*rapid.T){
			"post": func(rt *rapid.T) {
				n++
				body := fmt.Sprintf(`"m%d"`, n)
				if _, err := engines[owner].Post(ctx, ref, "c", []NewMessage{{Body: json.RawMessage(body), TTL: 3600}}); err != nil {
					rt.Fatalf("owner's post: %v", err)
				}
				acked = append(acked, body)
			},
			"stalePost": func(rt *rapid.T) {
				if stale < 0 {
					rt.Skip("no stale node")
				}
				n++
				body := fmt.Sprintf(`"stale%d"`, n)
				_, err := engines[stale].Post(ctx, ref, "c", []NewMessage{{Body: json.RawMessage(body), TTL: 3600}})
				if err == nil {
					rt.Fatalf("a node that lost the queue acknowledged %s", body)
				}
				if !errors.Is(err, ErrFenced) && !errors.Is(err, ErrNotOwner) {
					rt.Fatalf("stale post: %v", err)
				}
			},
			"staleClaim": func(rt *rapid.T) {
				if stale < 0 {
					rt.Skip("no stale node")
				}
				c, err := engines[stale].Claim(ctx, ref, ClaimOptions{TTL: 600, Grace: 60, Limit: 5})
				if err == nil && c != nil {
					rt.Fatalf("a node that lost the queue handed out claim %s", c.ID)
				}
			},
			"claim": func(rt *rapid.T) {
				c, err := engines[owner].Claim(ctx, ref, ClaimOptions{TTL: 600, Grace: 60, Limit: rapid.IntRange(1, 4).Draw(rt, "limit")})
				if err != nil {
					rt.Fatalf("claim: %v", err)
				}
				if c == nil {
					return
				}
				for _, m := range c.Messages {
					b := string(m.Body)
					if other, ok := claimed[b]; ok {
						rt.Fatalf("%s handed out in claim %s while claim %s is live", b, c.ID, other)
					}
					claimed[b] = c.ID
				}
			},
			"delete": func(rt *rapid.T) {
				msgs, err := engines[owner].List(ctx, ref, ListOptions{Limit: 20, Echo: true, IncludeClaimed: true})
				if err != nil {
					rt.Fatal(err)
				}
				if len(msgs) == 0 {
					rt.Skip("empty")
				}
				m := msgs[rapid.IntRange(0, len(msgs)-1).Draw(rt, "which")]
				if err := engines[owner].DeleteMessage(ctx, ref, m.ID, m.ClaimID); err != nil {
					rt.Fatalf("delete: %v", err)
				}
				deleted[string(m.Body)] = true
				delete(claimed, string(m.Body))
			},
			"move": func(rt *rapid.T) {
				to := rapid.IntRange(0, nodes-1).Draw(rt, "to")
				pause := rapid.Bool().Draw(rt, "pause")
				prev := owner
				for _, f := range fences {
					f.believe = nil
				}
				stale = -1
				if pause && to != prev {
					// The old owner does not notice: it still believes.
					ep, _ := fences[prev].Epoch(ref)
					fences[prev].believe = map[QueueRef]int64{ref: ep}
					stale = prev
				}
				truth.give(ref, fmt.Sprint("n", to))
				owner = to
			},
			"release": func(rt *rapid.T) {
				if err := engines[owner].Release(ctx, func(QueueRef) bool { return true }); err != nil {
					rt.Fatal(err)
				}
			},
			"": func(rt *rapid.T) {
				msgs, err := engines[owner].List(ctx, ref, ListOptions{Limit: 100, Echo: true, IncludeClaimed: true})
				if err != nil {
					rt.Fatalf("list: %v", err)
				}
				var got, want []string
				for _, m := range msgs {
					got = append(got, string(m.Body))
				}
				for _, b := range acked {
					if !deleted[b] {
						want = append(want, b)
					}
				}
				if len(want) > 100 {
					want = want[:100]
				}
				if !slices.Equal(got, want) {
					rt.Fatalf("owner lists %v\nwant %v", got, want)
				}
			},
		})
		if _, err := s.Get(ctx, controlContainer, catalogKey(ref), nil); err != nil && !errors.Is(err, drivers.ErrNotFound) {
			rt.Fatal(err)
		}
	})
}
