package index

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/cistern-mq/cistern/drivers"
)

// refusingStore fails every Put while refuse is set, the way a full disk
// does, without writing anything.
type refusingStore struct {
	drivers.Store
	refuse atomic.Bool
}

func (s *refusingStore) Put(ctx context.Context, container, key string, data []byte, o *drivers.PutOptions) error {
	if s.refuse.Load() {
		return fmt.Errorf("%w: no space left on device", drivers.ErrUnavailable)
	}
	return s.Store.Put(ctx, container, key, data, o)
}

// A post whose write failed must never lend its body, nor its id, to a
// message accepted later (issue: a rejected body delivered under an
// accepted message's id).
func TestFailedWriteDoesNotAlias(t *testing.T) {
	s := &refusingStore{Store: newMem()}
	e := openEngine(t, s, newFakeClock(), nil)
	q := QueueRef{Project: "p", Name: "q"}
	post := func(body string) ([]string, error) {
		return e.Post(ctx, q, "c", []NewMessage{{Body: []byte(`"` + body + `"`), TTL: 300}})
	}
	a, err := post("A")
	if err != nil {
		t.Fatal(err)
	}
	s.refuse.Store(true)
	poison, err := post("POISON")
	if err == nil {
		t.Fatal("post with a refusing store succeeded")
	}
	s.refuse.Store(false)
	b, err := post("B")
	if err != nil {
		t.Fatal(err)
	}
	if len(poison) > 0 && poison[0] == b[0] {
		t.Errorf("accepted message got the id %s of a rejected one", b[0])
	}
	got, err := e.GetMessages(ctx, q, []string{a[0], b[0]})
	if err != nil || len(got) != 2 {
		t.Fatalf("GetMessages = %v, %v", got, err)
	}
	if string(got[0].Body) != `"A"` || string(got[1].Body) != `"B"` {
		t.Errorf("bodies = %s, %s; want \"A\", \"B\"", got[0].Body, got[1].Body)
	}
	c, err := e.Claim(ctx, q, ClaimOptions{TTL: 60, Grace: 60, Limit: 10})
	if err != nil || c == nil || len(c.Messages) != 2 {
		t.Fatalf("Claim = %+v, %v", c, err)
	}
	for i, want := range []string{`"A"`, `"B"`} {
		if string(c.Messages[i].Body) != want {
			t.Errorf("claimed message %d body %s, want %s", i, c.Messages[i].Body, want)
		}
	}
	// A reopened engine (nothing cached) agrees.
	e.Close()
	e2 := openEngine(t, s, newFakeClock(), nil)
	got, err = e2.GetMessages(ctx, q, []string{b[0]})
	if err != nil || len(got) != 1 || string(got[0].Body) != `"B"` {
		t.Errorf("after reopen: %v, %v", got, err)
	}
}
