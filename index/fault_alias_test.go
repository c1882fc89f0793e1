package index_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/cistern-mq/cistern/drivers"
	"github.com/cistern-mq/cistern/drivers/faultstore"
	"github.com/cistern-mq/cistern/drivers/fsdriver"
	"github.com/cistern-mq/cistern/drivers/memdriver"
	"github.com/cistern-mq/cistern/index"
)

// TestFaultRejectedBodyNeverServed is issue 11's first defect: post A
// (201); the store fills up; post POISON (fails); the store has room again;
// post B (201). Reading B's id and claiming must give B, never POISON: a
// sequence number that was never acknowledged must not alias a later one,
// in the body cache or in the store. Run with the disk full (puts fail,
// reads work), down (everything fails), and with puts refused as invalid
// (an error the engine does not retry).
func TestFaultRejectedBodyNeverServed(t *testing.T) {
	for _, c := range []struct {
		name  string
		fault func(*faultstore.Store)
	}{
		{"full", func(f *faultstore.Store) { f.SetFull(true) }},
		{"down", func(f *faultstore.Store) { f.SetDown(true) }},
		{"invalid", func(f *faultstore.Store) {
			f.Add(faultstore.Rule{Verbs: []faultstore.Verb{faultstore.Put}, Err: drivers.ErrInvalid})
		}},
	} {
		for _, st := range []string{"mem", "fs"} {
			t.Run(c.name+"/"+st, func(t *testing.T) {
				var base drivers.Store = memdriver.New()
				if st == "fs" {
					s, err := fsdriver.New(t.TempDir())
					if err != nil {
						t.Fatal(err)
					}
					base = s
				}
				f := faultstore.New(base, faultstore.Options{Seed: 1})
				e := openFault(t, f)
				ref := index.QueueRef{Project: "p", Name: "alias"}
				postOne(t, e, ref, `"A"`)
				c.fault(f)
				if _, err := e.Post(ctx, ref, "c", []index.NewMessage{{Body: json.RawMessage(`"POISON"`), TTL: 3600}}); err == nil {
					t.Fatal("post while the store fails was acknowledged")
				} else if !errors.Is(err, drivers.ErrUnavailable) && !errors.Is(err, drivers.ErrInvalid) {
					t.Fatalf("post while the store fails: %v, want a store error", err)
				}
				f.Clear()
				idB := postOne(t, e, ref, `"B"`)
				got, err := e.GetMessages(ctx, ref, []string{idB})
				if err != nil || len(got) != 1 {
					t.Fatalf("GetMessages(B) = %v, %v", got, err)
				}
				if string(got[0].Body) != `"B"` {
					t.Errorf("GET of B's id %s gives body %s, want \"B\"", idB, got[0].Body)
				}
				cl, err := e.Claim(ctx, ref, index.ClaimOptions{TTL: 60, Grace: 60, Limit: 10})
				if err != nil || cl == nil {
					t.Fatalf("Claim = %v, %v", cl, err)
				}
				for _, m := range cl.Messages {
					if string(m.Body) == `"POISON"` {
						t.Errorf("claim hands out the rejected body under id %s", m.ID)
					}
				}
				if n := len(cl.Messages); n != 2 || string(cl.Messages[1].Body) != `"B"` {
					t.Errorf("claimed %q, want [\"A\" \"B\"]", bodiesOf(cl.Messages))
				}
				// And the store holds the truth: a fresh engine agrees.
				e2 := openFault(t, base)
				got, err = e2.GetMessages(ctx, ref, []string{idB})
				if err != nil || len(got) != 1 || string(got[0].Body) != `"B"` {
					t.Errorf("after reopen, GET of B's id = %q, %v", bodiesOf(got), err)
				}
			})
		}
	}
}
