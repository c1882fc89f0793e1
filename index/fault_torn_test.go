package index_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/cistern-mq/cistern/drivers/faultstore"
	"github.com/cistern-mq/cistern/drivers/memdriver"
	"github.com/cistern-mq/cistern/index"
)

// TestFaultTornRecoveryReads: a queue loaded while the store returns torn
// or flipped objects either fails to load (and loads once the store reads
// whole again) or loads whole; it never loads a smaller queue.
func TestFaultTornRecoveryReads(t *testing.T) {
	for _, c := range []struct {
		name   string
		prefix string
		effect faultstore.Effect
		seed   uint64
	}{
		{"torn snapshots", "snap/", faultstore.Torn, 3},
		{"flipped snapshots", "snap/", faultstore.Flip, 3},
		{"torn logs", "log/", faultstore.Torn, 3},
		{"flipped logs", "log/", faultstore.Flip, 3},
		{"torn catalog", "catalog/", faultstore.Torn, 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			base := memdriver.New()
			ref := index.QueueRef{Project: "p", Name: "torn"}
			e := openFault(t, base) // a snapshot every 4 logs
			var ids []string
			for i := range 14 {
				ids = append(ids, postOne(t, e, ref, fmt.Sprintf(`"m%d"`, i)))
			}
			// Delete the oldest ones, so that collection has logs to drop.
			for _, id := range ids[:6] {
				if err := e.DeleteMessage(ctx, ref, id, ""); err != nil {
					t.Fatal(err)
				}
			}
			e.Close()
			f := faultstore.New(base, faultstore.Options{Seed: c.seed})
			f.Add(faultstore.Rule{Verbs: []faultstore.Verb{faultstore.Get}, Gets: faultstore.GetsWhole, KeyPrefix: c.prefix, Effect: c.effect})
			e2 := openFault(t, f)
			ms, err := e2.List(ctx, ref, index.ListOptions{Limit: 100, Echo: true, IncludeClaimed: true})
			if err == nil {
				checkLive(t, "while torn", ms, ids[6:], "")
			}
			// A post while the store tears reads must not be lost either.
			late, err := e2.Post(ctx, ref, "c", []index.NewMessage{{Body: []byte(`"late"`), TTL: 3600}})
			f.Clear()
			want := ""
			if err == nil {
				ids = append(ids, late[0])
				want = `"late"`
			}
			ms, err = e2.List(ctx, ref, index.ListOptions{Limit: 100, Echo: true, IncludeClaimed: true})
			if err != nil {
				t.Fatalf("List once the store reads whole: %v", err)
			}
			checkLive(t, "same engine, store whole again", ms, ids[6:], want)
			ms, err = openFault(t, base).List(ctx, ref, index.ListOptions{Limit: 100, Echo: true, IncludeClaimed: true})
			if err != nil {
				t.Fatalf("List after reopen: %v", err)
			}
			checkLive(t, "reopened", ms, ids[6:], want)
		})
	}
}

// checkLive checks that ms are the messages ids, the first posted as
// "m6", "m7"..., and the last with body last when last is not "".
func checkLive(t *testing.T, when string, ms []index.Message, ids []string, last string) {
	t.Helper()
	if len(ms) != len(ids) {
		t.Errorf("%s: queue lists %d messages %q, want %d", when, len(ms), bodiesOf(ms), len(ids))
		return
	}
	for i, m := range ms {
		want := fmt.Sprintf(`"m%d"`, 6+i)
		if last != "" && i == len(ms)-1 {
			want = last
		}
		if m.ID != ids[i] || string(m.Body) != want {
			t.Errorf("%s: message %d is %s %s, want %s %s", when, i, m.ID, m.Body, ids[i], want)
		}
	}
}

// TestFaultFlippedCatalog: a queue whose catalog entry reads with a byte
// changed either fails to load or loads whole; what is acknowledged
// meanwhile is not lost. A flip that turns a letter of the queue's
// generation to upper case leaves valid JSON naming a container that does
// not exist; where the flip lands depends on the seed and on the random
// generation, so the test tries many seeds.
func TestFaultFlippedCatalog(t *testing.T) {
	for seed := range uint64(40) {
		base := memdriver.New()
		ref := index.QueueRef{Project: "p", Name: "cat"}
		e := openFault(t, base)
		before := postOne(t, e, ref, `"before"`)
		e.Close()
		f := faultstore.New(base, faultstore.Options{Seed: seed})
		f.Add(faultstore.Rule{Verbs: []faultstore.Verb{faultstore.Get}, KeyPrefix: "catalog/", Effect: faultstore.Flip, Count: 1})
		e2 := openFault(t, f)
		want := []string{before}
		if late, err := e2.Post(ctx, ref, "c", []index.NewMessage{{Body: []byte(`"late"`), TTL: 3600}}); err == nil {
			want = append(want, late[0])
		}
		ms, err := openFault(t, base).List(ctx, ref, index.ListOptions{Limit: 10, Echo: true})
		var got []string
		for _, m := range ms {
			got = append(got, m.ID)
		}
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("seed %d: after a flipped catalog read, a fresh engine lists %v (%q), %v; want %v", seed, got, bodiesOf(ms), err, want)
		}
	}
}
