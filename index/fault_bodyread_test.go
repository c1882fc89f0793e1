package index_test

import (
	"fmt"
	"testing"

	"github.com/cistern-mq/cistern/drivers/faultstore"
	"github.com/cistern-mq/cistern/drivers/memdriver"
	"github.com/cistern-mq/cistern/index"
)

// TestFaultTornBodyRead: a body read with a ranged get that comes back
// short or altered is never served as the message's body: the read fails
// (the client tries again) or gives the body that was posted. Bodies are
// read from a fresh engine, so that none comes from the cache.
func TestFaultTornBodyRead(t *testing.T) {
	for _, effect := range []faultstore.Effect{faultstore.Torn, faultstore.Flip} {
		t.Run(effect.String(), func(t *testing.T) {
			base := memdriver.New()
			ref := index.QueueRef{Project: "p", Name: "bodies"}
			e := openFault(t, base)
			var ids []string
			for i := range 5 {
				ids = append(ids, postOne(t, e, ref, fmt.Sprintf(`{"message":%d,"text":"some words to cut"}`, i)))
			}
			e.Close()
			f := faultstore.New(base, faultstore.Options{Seed: 9})
			f.Add(faultstore.Rule{Verbs: []faultstore.Verb{faultstore.Get}, Gets: faultstore.GetsRanged, Effect: effect})
			e2 := openFault(t, f)
			for i, id := range ids {
				got, err := e2.GetMessages(ctx, ref, []string{id})
				if err != nil {
					continue // refused: the client asks again
				}
				want := fmt.Sprintf(`{"message":%d,"text":"some words to cut"}`, i)
				if len(got) != 1 || string(got[0].Body) != want {
					t.Errorf("GET %s through a %s ranged read = %q, want %s or an error", id, effect, bodiesOf(got), want)
				}
			}
		})
	}
}
