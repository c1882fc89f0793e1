package index_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/cistern-mq/cistern/drivers/memdriver"
	. "github.com/cistern-mq/cistern/index"
	"github.com/cistern-mq/cistern/index/enginetest"
)

var ctx = context.Background()

// modelMsg is what the model knows of a message.
type modelMsg struct {
	id      string
	body    string
	expires int64 // unix seconds
	visible int64
	claim   string
}

type modelClaim struct {
	expires int64
	grace   int64
}

// model is the simple reference the engine is checked against.
type model struct {
	msgs   []*modelMsg
	claims map[string]*modelClaim
}

func (m *model) liveClaim(x *modelMsg, now int64) string {
	if x.claim == "" {
		return ""
	}
	if c := m.claims[x.claim]; c != nil && c.expires > now {
		return x.claim
	}
	return ""
}

func (m *model) live(now int64) []*modelMsg {
	var out []*modelMsg
	for _, x := range m.msgs {
		if x.expires > now {
			out = append(out, x)
		}
	}
	return out
}

func (m *model) remove(id string) {
	m.msgs = slices.DeleteFunc(m.msgs, func(x *modelMsg) bool { return x.id == id })
}

// engineRun is one engine under test, with what it needs to crash and
// reopen.
type engineRun struct {
	t     *rapid.T
	mem   *memdriver.Store
	store *enginetest.Crashable
	clk   *enginetest.Clock
	e     *Engine
	ref   QueueRef
	model model
	n     int
	// opts shrink snapshot intervals so recovery from snapshots and
	// garbage collection run often.
	snapLogs int
}

func (r *engineRun) open() {
	r.store = &enginetest.Crashable{Store: r.mem}
	e, err := Open(context.Background(), Options{Store: r.store, Clock: r.clk, NoJanitor: true,
		SnapshotLogs: r.snapLogs, MaxBatchRecords: 7})
	if err != nil {
		r.t.Fatalf("Open: %v", err)
	}
	r.e = e
}

func (r *engineRun) now() int64 { return r.clk.Now().Unix() }

func (r *engineRun) check() {
	t := r.t
	now := r.now()
	got, err := r.e.List(ctx, r.ref, ListOptions{Limit: 1 << 30, Echo: true, IncludeClaimed: true, IncludeDelayed: true})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	want := r.model.live(now)
	if len(got) != len(want) {
		t.Fatalf("listed %d messages, model has %d", len(got), len(want))
	}
	for i := range got {
		if got[i].ID != want[i].id || string(got[i].Body) != want[i].body {
			t.Fatalf("message %d: got %s %s, want %s %s", i, got[i].ID, got[i].Body, want[i].id, want[i].body)
		}
		if wc := r.model.liveClaim(want[i], now); got[i].ClaimID != wc {
			t.Fatalf("message %s: claim %q, model says %q", got[i].ID, got[i].ClaimID, wc)
		}
	}
}

func TestModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		r := &engineRun{t: t, mem: memdriver.New(), clk: enginetest.NewClock(), ref: QueueRef{Project: "p", Name: "m"},
			model: model{claims: map[string]*modelClaim{}}, snapLogs: rapid.IntRange(1, 6).Draw(t, "snapLogs")}
		r.open()
		defer func() { r.e.Close() }()
		t.Repeat(map[string]func(*rapid.T){
			"post": func(t *rapid.T) {
				in := drawPost(t, 5, &r.n)
				ids, err := r.e.Post(ctx, r.ref, "client", in)
				if err != nil {
					t.Fatalf("Post: %v", err)
				}
				now := r.now()
				for i, id := range ids {
					r.model.msgs = append(r.model.msgs, &modelMsg{id: id, body: string(in[i].Body), expires: now + in[i].TTL, visible: now + in[i].Delay})
				}
			},
			"claim": func(t *rapid.T) {
				limit := rapid.IntRange(1, 20).Draw(t, "limit")
				ttl := int64(rapid.IntRange(60, 300).Draw(t, "claimTTL"))
				grace := int64(rapid.IntRange(0, 120).Draw(t, "grace"))
				c, err := r.e.Claim(ctx, r.ref, ClaimOptions{TTL: ttl, Grace: grace, Limit: limit})
				if err != nil {
					t.Fatalf("Claim: %v", err)
				}
				now := r.now()
				var want []*modelMsg
				for _, x := range r.model.live(now) {
					if len(want) < limit && x.visible <= now && r.model.liveClaim(x, now) == "" {
						want = append(want, x)
					}
				}
				if c == nil {
					if len(want) != 0 {
						t.Fatalf("claim returned nothing; model has %d claimable", len(want))
					}
					return
				}
				if len(c.Messages) != len(want) {
					t.Fatalf("claimed %d, model says %d", len(c.Messages), len(want))
				}
				r.model.claims[c.ID] = &modelClaim{expires: now + ttl, grace: grace}
				for i, m := range c.Messages {
					if m.ID != want[i].id {
						t.Fatalf("claim %d: %s, want %s (FIFO)", i, m.ID, want[i].id)
					}
					if string(m.Body) != want[i].body {
						t.Fatalf("claimed body %s, want %s", m.Body, want[i].body)
					}
					want[i].claim = c.ID
					want[i].expires = max(want[i].expires, now+ttl+grace)
				}
			},
			"deleteWithClaim": func(t *rapid.T) {
				now := r.now()
				var claimed []*modelMsg
				for _, x := range r.model.live(now) {
					if r.model.liveClaim(x, now) != "" {
						claimed = append(claimed, x)
					}
				}
				if len(claimed) == 0 {
					t.Skip("nothing claimed")
				}
				x := rapid.SampledFrom(claimed).Draw(t, "msg")
				if err := r.e.DeleteMessage(ctx, r.ref, x.id, x.claim); err != nil {
					t.Fatalf("DeleteMessage with claim: %v", err)
				}
				r.model.remove(x.id)
			},
			"deleteFree": func(t *rapid.T) {
				live := r.model.live(r.now())
				if len(live) == 0 {
					t.Skip("empty")
				}
				x := rapid.SampledFrom(live).Draw(t, "msg")
				err := r.e.DeleteMessage(ctx, r.ref, x.id, "")
				if r.model.liveClaim(x, r.now()) != "" {
					if err == nil {
						t.Fatalf("deleted a claimed message without its claim")
					}
					return
				}
				if err != nil {
					t.Fatalf("DeleteMessage: %v", err)
				}
				r.model.remove(x.id)
			},
			"deleteByIDs": func(t *rapid.T) {
				live := r.model.live(r.now())
				if len(live) == 0 {
					t.Skip("empty")
				}
				picked := rapid.SliceOfNDistinct(rapid.SampledFrom(live), 1, 5, func(x *modelMsg) string { return x.id }).Draw(t, "msgs")
				var ids []string
				for _, x := range picked {
					ids = append(ids, x.id)
				}
				if err := r.e.DeleteMessages(ctx, r.ref, ids); err != nil {
					t.Fatalf("DeleteMessages: %v", err)
				}
				for _, id := range ids {
					r.model.remove(id)
				}
			},
			"pop": func(t *rapid.T) {
				n := rapid.IntRange(1, 5).Draw(t, "n")
				got, err := r.e.Pop(ctx, r.ref, n)
				if err != nil {
					t.Fatalf("Pop: %v", err)
				}
				now := r.now()
				var want []*modelMsg
				for _, x := range r.model.live(now) {
					if len(want) < n && x.visible <= now && r.model.liveClaim(x, now) == "" {
						want = append(want, x)
					}
				}
				if len(got) != len(want) {
					t.Fatalf("popped %d, model says %d", len(got), len(want))
				}
				for i := range got {
					if got[i].ID != want[i].id || string(got[i].Body) != want[i].body {
						t.Fatalf("pop %d: %s %s, want %s %s", i, got[i].ID, got[i].Body, want[i].id, want[i].body)
					}
					r.model.remove(want[i].id)
				}
			},
			"renew": func(t *rapid.T) {
				now := r.now()
				// A claim lives while it has not expired and holds a
				// message: one whose messages are all gone is gone too.
				var live []string
				for id, c := range r.model.claims {
					if c.expires <= now {
						continue
					}
					if slices.ContainsFunc(r.model.live(now), func(x *modelMsg) bool { return x.claim == id }) {
						live = append(live, id)
					}
				}
				if len(live) == 0 {
					t.Skip("no live claim")
				}
				slices.Sort(live)
				id := rapid.SampledFrom(live).Draw(t, "claim")
				ttl := int64(rapid.IntRange(60, 300).Draw(t, "ttl"))
				grace := int64(rapid.IntRange(0, 120).Draw(t, "grace"))
				if err := r.e.RenewClaim(ctx, r.ref, id, ttl, grace); err != nil {
					t.Fatalf("RenewClaim: %v", err)
				}
				c := r.model.claims[id]
				c.expires, c.grace = now+ttl, grace
				for _, x := range r.model.msgs {
					if x.claim == id {
						x.expires = max(x.expires, now+ttl+grace)
					}
				}
			},
			"release": func(t *rapid.T) {
				var ids []string
				for id := range r.model.claims {
					ids = append(ids, id)
				}
				if len(ids) == 0 {
					t.Skip("no claim")
				}
				slices.Sort(ids)
				id := rapid.SampledFrom(ids).Draw(t, "claim")
				if err := r.e.ReleaseClaim(ctx, r.ref, id); err != nil {
					t.Fatalf("ReleaseClaim: %v", err)
				}
				delete(r.model.claims, id)
				for _, x := range r.model.msgs {
					if x.claim == id {
						x.claim = ""
					}
				}
			},
			"purge": func(t *rapid.T) {
				if rapid.IntRange(0, 9).Draw(t, "rare") != 0 {
					t.Skip("purge is rare")
				}
				if err := r.e.Purge(ctx, r.ref); err != nil {
					t.Fatalf("Purge: %v", err)
				}
				r.model.msgs = nil
				r.model.claims = map[string]*modelClaim{}
			},
			"advance": func(t *rapid.T) {
				r.clk.Advance(time.Duration(rapid.IntRange(1, 200).Draw(t, "seconds")) * time.Second)
			},
			"janitor": func(t *rapid.T) { r.e.Janitor() },
			"crash": func(t *rapid.T) {
				// Drop the engine without Close: its store dies with it.
				r.store.Crash()
				old := r.e
				r.open()
				go old.Close() // let its goroutines wind down against the dead store
			},
			"": func(t *rapid.T) { r.check() },
		})
	})
}

// drawPost draws a post of 1 to most messages sharing a drawn TTL and
// delay, their bodies numbered on from *n.
func drawPost(t *rapid.T, most int, n *int) []NewMessage {
	count := rapid.IntRange(1, most).Draw(t, "n")
	ttl := int64(rapid.IntRange(60, 600).Draw(t, "ttl"))
	delay := int64(rapid.SampledFrom([]int{0, 0, 0, 30}).Draw(t, "delay"))
	in := make([]NewMessage, 0, count)
	for range count {
		*n++
		in = append(in, NewMessage{Body: []byte(fmt.Sprintf(`{"n":%d}`, *n)), TTL: ttl, Delay: delay})
	}
	return in
}
