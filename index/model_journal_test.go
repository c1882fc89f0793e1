package index_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"pgregory.net/rapid"

	"github.com/cistern-mq/cistern/drivers"
	"github.com/cistern-mq/cistern/drivers/memdriver"
	. "github.com/cistern-mq/cistern/index"
	"github.com/cistern-mq/cistern/index/enginetest"
)

// TestModelJournal checks the node's journal against the model of
// model_test.go, one model per queue, over three queues that share it (two
// of one project, one of another with the same name as the first). Besides
// the requests, the engine is stopped cleanly, abandoned, cut off its
// store at a store call drawn at random (that call may land or not), and
// its journal is damaged between two engines. A request that fails is
// "unknown": the engine is then abandoned, and the next engine's view must
// be the model with or without that request, never anything else.
func TestModelJournal(t *testing.T) {
	var seen journalSeen
	rapid.Check(t, func(t *rapid.T) {
		seen.runs.Add(1)
		r := &journalRun{t: t, mem: memdriver.New(), clk: enginetest.NewClock(), seen: &seen,
			snapLogs: rapid.IntRange(1, 6).Draw(t, "snapLogs"),
			// Folds due by weight too (a body is about 8 bytes).
			foldBytes: rapid.SampledFrom([]int{0, 0, 20}).Draw(t, "foldBytes"),
			refs:      []QueueRef{{Project: "p", Name: "a"}, {Project: "p", Name: "b"}, {Project: "x", Name: "a"}},
		}
		r.models = map[QueueRef]*model{}
		for _, ref := range r.refs {
			r.models[ref] = &model{claims: map[string]*modelClaim{}}
		}
		r.open()
		defer func() { r.e.Close() }()
		t.Repeat(map[string]func(*rapid.T){
			"post":        r.post,
			"list":        func(t *rapid.T) { r.checkQueue(t, r.drawRef(t)) },
			"claim":       r.claim,
			"deleteClaim": r.deleteWithClaim,
			"deleteFree":  r.deleteFree,
			"deleteIDs":   r.deleteIDs,
			"pop":         r.pop,
			"release":     r.release,
			"purge":       r.purge,
			"advance": func(t *rapid.T) {
				r.clk.Advance(time.Duration(rapid.IntRange(1, 200).Draw(t, "seconds")) * time.Second)
			},
			"janitor":       func(t *rapid.T) { r.e.Janitor() },
			"closeReopen":   r.closeReopen,
			"crash":         func(t *rapid.T) { r.crash(); r.open(); r.checkAll(t) },
			"cutAt":         r.cutAt,
			"damageJournal": r.damageJournal,
			"":              func(t *rapid.T) { r.checkAll(t) },
		})
	})
	// Folds and trims run in the background: the test only means
	// something if they happened, and met the crashes, in some runs.
	t.Logf("%d runs: %d body objects, %d snapshots, %d journal trims, %d refused opens, %d unknown requests",
		seen.runs.Load(), seen.bodies.Load(), seen.snaps.Load(), seen.trims.Load(), seen.refused.Load(), seen.unknown.Load())
	if seen.runs.Load() >= 20 && (seen.bodies.Load() == 0 || seen.trims.Load() == 0) {
		t.Errorf("no fold or no journal trim in %d runs: the journal's folds were not tested", seen.runs.Load())
	}
}

// journalSeen counts, over all runs, the store writes that show the
// journal folding and trimming.
type journalSeen struct {
	runs, bodies, snaps, trims, refused, unknown atomic.Int64
}

// journalRun is one run of TestModelJournal: the store, the engine over
// it, and a model per queue.
type journalRun struct {
	t         *rapid.T
	mem       *memdriver.Store
	store     *cutStore
	clk       *enginetest.Clock
	e         *Engine
	refs      []QueueRef
	models    map[QueueRef]*model
	n         int
	snapLogs  int
	foldBytes int
	seen      *journalSeen
}

func (r *journalRun) options(s drivers.Store) Options {
	o := Options{Store: s, Clock: r.clk, Logger: zerolog.Nop(), NoJanitor: true,
		SnapshotLogs: r.snapLogs, FoldBytes: r.foldBytes, MaxBatchRecords: 7}
	if os.Getenv("CISTERN_TEST_LOG") != "" {
		o.Logger = zerolog.New(os.Stderr).Level(zerolog.DebugLevel)
	}
	return o
}

// open starts an engine over a fresh wrapper of the store, so that the
// engine before it (abandoned over its own wrapper) cannot write again.
func (r *journalRun) open() {
	r.store = &cutStore{Store: r.mem, seen: r.seen}
	e, err := Open(ctx, r.options(r.store))
	if err != nil {
		r.t.Fatalf("Open: %v", err)
	}
	r.e = e
}

// crash abandons the engine as kill -9 would: its store fails from now on.
func (r *journalRun) crash() {
	r.store.Crash()
	old := r.e
	go old.Close() // its goroutines wind down against the dead store
}

func (r *journalRun) now() int64 { return r.clk.Now().Unix() }

func (r *journalRun) drawRef(t *rapid.T) QueueRef {
	return rapid.SampledFrom(r.refs).Draw(t, "queue")
}

func (r *journalRun) list(ref QueueRef) ([]Message, error) {
	return r.e.List(ctx, ref, ListOptions{Limit: 1 << 30, Echo: true, IncludeClaimed: true, IncludeDelayed: true})
}

// compare reports how got differs from what m says is live at now.
func compare(m *model, now int64, got []Message) error {
	want := m.live(now)
	if len(got) != len(want) {
		return fmt.Errorf("listed %d messages, model has %d", len(got), len(want))
	}
	for i := range got {
		if got[i].ID != want[i].id || string(got[i].Body) != want[i].body {
			return fmt.Errorf("message %d: got %s %s, want %s %s", i, got[i].ID, got[i].Body, want[i].id, want[i].body)
		}
		if wc := m.liveClaim(want[i], now); got[i].ClaimID != wc {
			return fmt.Errorf("message %s: claim %q, model says %q", got[i].ID, got[i].ClaimID, wc)
		}
	}
	return nil
}

func (r *journalRun) checkQueue(t *rapid.T, ref QueueRef) {
	got, err := r.list(ref)
	if err != nil {
		r.unknown(t, ref, "List", err, nil)
		return
	}
	if err := compare(r.models[ref], r.now(), got); err != nil {
		t.Fatalf("%s: %v", ref, err)
	}
}

func (r *journalRun) checkAll(t *rapid.T) {
	for _, ref := range r.refs {
		r.checkQueue(t, ref)
	}
}

// happened builds the model of ref as it is if an unknown request took
// effect, from the model before it and the engine's listing (which tells
// ids the request did not return); false when got cannot be that.
type happened func(m *model, got []Message) (*model, bool)

// unknown handles a request that failed. With a healthy store that is a
// defect. Otherwise the engine is abandoned, a new one opened, and each
// queue's listing must match its model, ref's either as it was or as
// happen makes it (nil: the request changed nothing); the model takes
// whichever matched.
func (r *journalRun) unknown(t *rapid.T, ref QueueRef, what string, err error, happen happened) {
	if !r.store.failing() {
		t.Fatalf("%s on %s failed with a healthy store: %v", what, ref, err)
	}
	t.Logf("%s on %s failed: %v: unknown", what, ref, err)
	r.seen.unknown.Add(1)
	r.crash()
	r.open()
	now := r.now()
	for _, q := range r.refs {
		got, lerr := r.list(q)
		if lerr != nil {
			t.Fatalf("List %s after reopening: %v", q, lerr)
		}
		before := compare(r.models[q], now, got)
		if before == nil {
			continue
		}
		if q != ref || happen == nil {
			t.Fatalf("%s after %s on %s failed: %v", q, what, ref, before)
		}
		m, ok := happen(r.models[q].clone(), got)
		var after error
		if ok {
			after = compare(m, now, got)
		} else {
			after = errors.New("the listing cannot be the request done")
		}
		if after != nil {
			t.Fatalf("%s after %s failed: neither as before (%v) nor as done (%v)", q, what, before, after)
		}
		r.models[q] = m
	}
}

func (m *model) clone() *model {
	c := &model{claims: map[string]*modelClaim{}}
	for _, x := range m.msgs {
		y := *x
		c.msgs = append(c.msgs, &y)
	}
	for id, cl := range m.claims {
		y := *cl
		c.claims[id] = &y
	}
	return c
}

func (m *model) find(id string) *modelMsg {
	for _, x := range m.msgs {
		if x.id == id {
			return x
		}
	}
	return nil
}

// claimable is what a claim or a pop of up to n takes at now, oldest first.
func (m *model) claimable(now int64, n int) []*modelMsg {
	var out []*modelMsg
	for _, x := range m.live(now) {
		if len(out) < n && x.visible <= now && m.liveClaim(x, now) == "" {
			out = append(out, x)
		}
	}
	return out
}

func (r *journalRun) post(t *rapid.T) {
	ref := r.drawRef(t)
	in := drawPost(t, 3, &r.n)
	now := r.now()
	add := func(m *model, ids []string) {
		for i, id := range ids {
			m.msgs = append(m.msgs, &modelMsg{id: id, body: string(in[i].Body), expires: now + in[i].TTL, visible: now + in[i].Delay})
		}
	}
	ids, err := r.e.Post(ctx, ref, "client", in)
	if err != nil {
		// All of the post or nothing, under the ids it was given if
		// it got that far.
		r.unknown(t, ref, "Post", err, func(m *model, _ []Message) (*model, bool) {
			if len(ids) != len(in) {
				return nil, false
			}
			add(m, ids)
			return m, true
		})
		return
	}
	if len(ids) != len(in) {
		t.Fatalf("posted %d messages, got %d ids", len(in), len(ids))
	}
	add(r.models[ref], ids)
}

func (r *journalRun) claim(t *rapid.T) {
	ref := r.drawRef(t)
	limit := rapid.IntRange(1, 5).Draw(t, "limit")
	ttl := int64(rapid.IntRange(30, 300).Draw(t, "claimTTL"))
	grace := int64(rapid.IntRange(0, 60).Draw(t, "grace"))
	now := r.now()
	take := func(m *model, id string) {
		m.claims[id] = &modelClaim{expires: now + ttl, grace: grace}
		for _, x := range m.claimable(now, limit) {
			x.claim = id
			x.expires = max(x.expires, now+ttl+grace)
		}
	}
	c, err := r.e.Claim(ctx, ref, ClaimOptions{TTL: ttl, Grace: grace, Limit: limit})
	if err != nil {
		r.unknown(t, ref, "Claim", err, func(m *model, got []Message) (*model, bool) {
			// The claim's id is the one the listing shows on the
			// first message it would have taken.
			want := m.claimable(now, limit)
			if len(want) == 0 {
				return nil, false
			}
			i := slices.IndexFunc(got, func(g Message) bool { return g.ID == want[0].id })
			if i < 0 || got[i].ClaimID == "" {
				return nil, false
			}
			take(m, got[i].ClaimID)
			return m, true
		})
		return
	}
	m := r.models[ref]
	want := m.claimable(now, limit)
	if c == nil {
		if len(want) != 0 {
			t.Fatalf("%s: claim returned nothing; model has %d claimable", ref, len(want))
		}
		return
	}
	if len(c.Messages) != len(want) {
		t.Fatalf("%s: claimed %d, model says %d", ref, len(c.Messages), len(want))
	}
	for i, msg := range c.Messages {
		if msg.ID != want[i].id || string(msg.Body) != want[i].body {
			t.Fatalf("%s: claim %d: %s %s, want %s %s (FIFO, one live claim each)", ref, i, msg.ID, msg.Body, want[i].id, want[i].body)
		}
	}
	take(m, c.ID)
}

// deleteWithClaim deletes a message that was claimed with the id of that
// claim: done while the claim lives, refused once it lapsed.
func (r *journalRun) deleteWithClaim(t *rapid.T) {
	ref := r.drawRef(t)
	m, now := r.models[ref], r.now()
	var claimed []*modelMsg
	for _, x := range m.live(now) {
		if x.claim != "" {
			claimed = append(claimed, x)
		}
	}
	if len(claimed) == 0 {
		t.Skip("nothing claimed")
	}
	x := rapid.SampledFrom(claimed).Draw(t, "msg")
	live := m.liveClaim(x, now) != ""
	err := r.e.DeleteMessage(ctx, ref, x.id, x.claim)
	switch {
	case !live && errors.Is(err, ErrMessageNotClaimed):
	case !live && err == nil:
		t.Fatalf("%s: deleted %s with lapsed claim %s", ref, x.id, x.claim)
	case live && err == nil:
		m.remove(x.id)
	default:
		r.unknown(t, ref, "DeleteMessage with claim", err, removing(x.id, live))
	}
}

// removing is the model after a delete of ids, if it would have happened.
func removing(id string, would bool) happened {
	if !would {
		return nil
	}
	return func(m *model, _ []Message) (*model, bool) {
		m.remove(id)
		return m, true
	}
}

func (r *journalRun) deleteFree(t *rapid.T) {
	ref := r.drawRef(t)
	m, now := r.models[ref], r.now()
	live := m.live(now)
	if len(live) == 0 {
		t.Skip("empty")
	}
	x := rapid.SampledFrom(live).Draw(t, "msg")
	claimed := m.liveClaim(x, now) != ""
	err := r.e.DeleteMessage(ctx, ref, x.id, "")
	switch {
	case claimed && errors.Is(err, ErrMessageClaimed):
	case claimed && err == nil:
		t.Fatalf("%s: deleted claimed %s without its claim", ref, x.id)
	case !claimed && err == nil:
		m.remove(x.id)
	default:
		r.unknown(t, ref, "DeleteMessage", err, removing(x.id, !claimed))
	}
}

func (r *journalRun) deleteIDs(t *rapid.T) {
	ref := r.drawRef(t)
	live := r.models[ref].live(r.now())
	if len(live) == 0 {
		t.Skip("empty")
	}
	picked := rapid.SliceOfNDistinct(rapid.SampledFrom(live), 1, 3, func(x *modelMsg) string { return x.id }).Draw(t, "msgs")
	var ids []string
	for _, x := range picked {
		ids = append(ids, x.id)
	}
	gone := func(m *model) {
		for _, id := range ids {
			m.remove(id)
		}
	}
	if err := r.e.DeleteMessages(ctx, ref, ids); err != nil {
		r.unknown(t, ref, "DeleteMessages", err, func(m *model, _ []Message) (*model, bool) { gone(m); return m, true })
		return
	}
	gone(r.models[ref])
}

func (r *journalRun) pop(t *rapid.T) {
	ref := r.drawRef(t)
	n := rapid.IntRange(1, 3).Draw(t, "n")
	now := r.now()
	want := r.models[ref].claimable(now, n)
	popped := func(m *model) {
		for _, x := range want {
			m.remove(x.id)
		}
	}
	got, err := r.e.Pop(ctx, ref, n)
	if err != nil {
		r.unknown(t, ref, "Pop", err, func(m *model, _ []Message) (*model, bool) { popped(m); return m, true })
		return
	}
	if len(got) != len(want) {
		t.Fatalf("%s: popped %d, model says %d", ref, len(got), len(want))
	}
	for i := range got {
		if got[i].ID != want[i].id || string(got[i].Body) != want[i].body {
			t.Fatalf("%s: pop %d: %s %s, want %s %s", ref, i, got[i].ID, got[i].Body, want[i].id, want[i].body)
		}
	}
	popped(r.models[ref])
}

func (r *journalRun) release(t *rapid.T) {
	ref := r.drawRef(t)
	m := r.models[ref]
	ids := slices.Sorted(func(yield func(string) bool) {
		for id := range m.claims {
			if !yield(id) {
				return
			}
		}
	})
	if len(ids) == 0 {
		t.Skip("no claim")
	}
	id := rapid.SampledFrom(ids).Draw(t, "claim")
	released := func(m *model) {
		delete(m.claims, id)
		for _, x := range m.msgs {
			if x.claim == id {
				x.claim = ""
			}
		}
	}
	if err := r.e.ReleaseClaim(ctx, ref, id); err != nil {
		r.unknown(t, ref, "ReleaseClaim", err, func(m *model, _ []Message) (*model, bool) { released(m); return m, true })
		return
	}
	released(m)
}

func (r *journalRun) purge(t *rapid.T) {
	if rapid.IntRange(0, 4).Draw(t, "rare") != 0 {
		t.Skip("purge is rare")
	}
	ref := r.drawRef(t)
	if err := r.e.Purge(ctx, ref); err != nil {
		r.unknown(t, ref, "Purge", err, func(*model, []Message) (*model, bool) {
			return &model{claims: map[string]*modelClaim{}}, true
		})
		return
	}
	r.models[ref] = &model{claims: map[string]*modelClaim{}}
}

// closeReopen stops the engine cleanly: with its store whole, that leaves
// every queue folded and no journal object behind.
func (r *journalRun) closeReopen(t *rapid.T) {
	if err := r.e.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if !r.store.failing() {
		start := r.journalStart(t)
		for _, s := range r.journalObjects(t) {
			if s >= start {
				t.Fatalf("a clean Close left journal object %d unfolded (journal-start %d)", s, start)
			}
			t.Fatalf("journal object %d, below journal-start %d, left in the store after a clean Close", s, start)
		}
	}
	r.open()
	r.checkAll(t)
}

// cutAt makes the engine's store fail from its n-th call on, as a crash
// between two store calls: the n-th lands or not. Whatever fails next is
// unknown: the engine is replaced then (journalRun.unknown).
func (r *journalRun) cutAt(t *rapid.T) {
	n := rapid.IntRange(1, 12).Draw(t, "cutCall")
	lands := rapid.Bool().Draw(t, "cutLands")
	r.store.cutAt(n, lands)
}

// damageJournal abandons the engine, then tears, flips or removes one of
// the journal objects a recovery reads: Open must refuse rather than
// serve queues without what they acknowledged, and open once the object
// is back.
func (r *journalRun) damageJournal(t *rapid.T) {
	r.crash()
	seqs := r.journalObjects(t)
	start := r.journalStart(t)
	// What recovery reads: from the start, while the next one is there.
	var read []uint64
	for _, s := range seqs {
		if s == start+uint64(len(read)) {
			read = append(read, s)
		}
	}
	if len(read) == 0 {
		r.open()
		r.checkAll(t)
		return
	}
	modes := []string{"torn", "flip"}
	if len(read) > 1 {
		// The last object removed looks like the end of the journal to
		// anyone: only one with a successor is known to be missing.
		modes = append(modes, "missing")
	}
	mode := rapid.SampledFrom(modes).Draw(t, "damage")
	i := rapid.IntRange(0, len(read)-1).Draw(t, "object")
	if mode == "missing" {
		i = rapid.IntRange(0, len(read)-2).Draw(t, "objectBeforeLast")
	}
	key := journalObjectKey(read[i])
	orig, err := r.mem.Get(ctx, ControlContainer, key, nil)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	switch mode {
	case "torn":
		cut := rapid.IntRange(0, len(orig)-1).Draw(t, "tornAt")
		err = r.mem.Put(ctx, ControlContainer, key, orig[:cut], nil)
	case "flip":
		at := rapid.IntRange(0, len(orig)-1).Draw(t, "flipAt")
		bad := slices.Clone(orig)
		bad[at] ^= byte(rapid.IntRange(1, 255).Draw(t, "flipBits"))
		err = r.mem.Put(ctx, ControlContainer, key, bad, nil)
	case "missing":
		err = r.mem.Delete(ctx, ControlContainer, key)
	}
	if err != nil {
		t.Fatalf("damage %s: %v", key, err)
	}
	e, err := Open(ctx, r.options(&cutStore{Store: r.mem, seen: r.seen}))
	if err == nil {
		e.Close()
		t.Fatalf("Open served a store whose journal object %s is %s", key, mode)
	}
	if !errors.Is(err, drivers.ErrUnavailable) {
		t.Fatalf("Open over journal object %s %s: %v, want ErrUnavailable", key, mode, err)
	}
	r.seen.refused.Add(1)
	if err := r.mem.Put(ctx, ControlContainer, key, orig, nil); err != nil {
		t.Fatalf("restore %s: %v", key, err)
	}
	r.open()
	r.checkAll(t)
}

// journalStart is the first journal object a recovery reads.
func (r *journalRun) journalStart(t *rapid.T) uint64 {
	data, err := r.mem.Get(ctx, ControlContainer, "journal-start", nil)
	if errors.Is(err, drivers.ErrNotFound) {
		return 1
	}
	var js struct{ Start uint64 }
	if err == nil {
		err = json.Unmarshal(data, &js)
	}
	if err != nil {
		t.Fatalf("journal-start %q: %v", data, err)
	}
	return js.Start
}

// journalObjects lists the numbers of the journal objects in the store.
func (r *journalRun) journalObjects(t *rapid.T) []uint64 {
	var out []uint64
	marker := ""
	for {
		p, err := r.mem.List(ctx, ControlContainer, &drivers.ListOptions{Prefix: "journal/", Marker: marker})
		if err != nil {
			t.Fatalf("list journal: %v", err)
		}
		for _, o := range p.Objects {
			s, err := strconv.ParseUint(strings.TrimPrefix(o.Key, "journal/"), 10, 64)
			if err != nil {
				t.Fatalf("journal key %q: %v", o.Key, err)
			}
			out = append(out, s)
		}
		if p.Next == "" {
			return out
		}
		marker = p.Next
	}
}

// journalObjectKey is the key of journal object seq (index/keys.go).
func journalObjectKey(seq uint64) string { return fmt.Sprintf("journal/%020d", seq) }

// cutStore is a store that fails every call from a point on, for one
// engine: from Crash, or from its n-th call (cutAt), which itself lands or
// not. It counts the writes that show folds and trims.
type cutStore struct {
	drivers.Store
	seen  *journalSeen
	calls atomic.Int64
	cut   atomic.Int64 // the first call that fails; 0: none
	lands atomic.Bool  // the cut call reaches the store
	dead  atomic.Bool
}

var errCut = drivers.Errorf(drivers.ErrUnavailable, "store cut off (crash)")

// Crash fails every call from now on.
func (s *cutStore) Crash() { s.dead.Store(true) }

func (s *cutStore) cutAt(n int, lands bool) {
	s.lands.Store(lands)
	s.cut.Store(s.calls.Load() + int64(n))
}

// failing reports whether calls fail by now.
func (s *cutStore) failing() bool {
	c := s.cut.Load()
	return s.dead.Load() || c > 0 && s.calls.Load() >= c
}

// enter numbers a call: pass says whether it reaches the store, fail
// whether its caller sees an error.
func (s *cutStore) enter() (pass, fail bool) {
	if s.dead.Load() {
		return false, true
	}
	n := s.calls.Add(1)
	switch c := s.cut.Load(); {
	case c == 0 || n < c:
		return true, false
	case n == c:
		return s.lands.Load(), true
	}
	return false, true
}

func (s *cutStore) Put(ctx context.Context, ct, k string, d []byte, o *drivers.PutOptions) error {
	pass, fail := s.enter()
	if pass {
		if err := s.Store.Put(ctx, ct, k, d, o); err != nil {
			return err
		}
		switch {
		case strings.HasPrefix(k, "body/"):
			s.seen.bodies.Add(1)
		case strings.HasPrefix(k, "snap/"):
			s.seen.snaps.Add(1)
		case k == "journal-start":
			s.seen.trims.Add(1)
		}
	}
	if fail {
		return errCut
	}
	return nil
}

func (s *cutStore) Get(ctx context.Context, ct, k string, o *drivers.GetOptions) ([]byte, error) {
	// A read cut off changes nothing whether it reached the store or not.
	if _, fail := s.enter(); fail {
		return nil, errCut
	}
	return s.Store.Get(ctx, ct, k, o)
}

func (s *cutStore) Head(ctx context.Context, ct, k string) (drivers.Attrs, error) {
	if _, fail := s.enter(); fail {
		return drivers.Attrs{}, errCut
	}
	return s.Store.Head(ctx, ct, k)
}

func (s *cutStore) Delete(ctx context.Context, ct, k string) error {
	pass, fail := s.enter()
	if pass {
		if err := s.Store.Delete(ctx, ct, k); err != nil {
			return err
		}
	}
	if fail {
		return errCut
	}
	return nil
}

func (s *cutStore) List(ctx context.Context, ct string, o *drivers.ListOptions) (drivers.Page, error) {
	if _, fail := s.enter(); fail {
		return drivers.Page{}, errCut
	}
	return s.Store.List(ctx, ct, o)
}

func (s *cutStore) CreateContainer(ctx context.Context, ct string) error {
	pass, fail := s.enter()
	if pass {
		if err := s.Store.CreateContainer(ctx, ct); err != nil {
			return err
		}
	}
	if fail {
		return errCut
	}
	return nil
}

func (s *cutStore) DeleteContainer(ctx context.Context, ct string) error {
	pass, fail := s.enter()
	if pass {
		if err := s.Store.DeleteContainer(ctx, ct); err != nil {
			return err
		}
	}
	if fail {
		return errCut
	}
	return nil
}

func (s *cutStore) ListContainers(ctx context.Context, o *drivers.ListOptions) (drivers.Page, error) {
	if _, fail := s.enter(); fail {
		return drivers.Page{}, errCut
	}
	return s.Store.ListContainers(ctx, o)
}
