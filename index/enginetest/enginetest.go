// Package enginetest runs the queue engine's end-to-end scenarios against any
// drivers.Store: the index package runs them on mem and fs, and this
// package's own tests run them on the real Swift and S3 stores in CI.
package enginetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cistern-mq/cistern/drivers"
	"github.com/cistern-mq/cistern/drivers/drivertest"
	"github.com/cistern-mq/cistern/index"
)

// Clock is a clock tests move by hand.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock starts at a fixed time.
func NewClock() *Clock { return &Clock{now: time.Unix(1_800_000_000, 0)} }

// Now implements index.Clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Crashable passes requests to a store until Crash; from then on every
// request fails, as if the process that made it had died. A request already
// passed on may still land, as a write in flight at a crash may.
type Crashable struct {
	drivers.Store
	dead atomic.Bool
}

// Crash kills the store for its engine.
func (c *Crashable) Crash() { c.dead.Store(true) }

var errCrashed = drivers.Errorf(drivers.ErrUnavailable, "crashed")

// Put implements drivers.Store.
func (c *Crashable) Put(ctx context.Context, ct, k string, d []byte, o *drivers.PutOptions) error {
	if c.dead.Load() {
		return errCrashed
	}
	return c.Store.Put(ctx, ct, k, d, o)
}

// Get implements drivers.Store.
func (c *Crashable) Get(ctx context.Context, ct, k string, o *drivers.GetOptions) ([]byte, error) {
	if c.dead.Load() {
		return nil, errCrashed
	}
	return c.Store.Get(ctx, ct, k, o)
}

// Delete implements drivers.Store; DeleteMany falls back to it, so a batch
// delete after a crash fails too.
func (c *Crashable) Delete(ctx context.Context, ct, k string) error {
	if c.dead.Load() {
		return errCrashed
	}
	return c.Store.Delete(ctx, ct, k)
}

// List implements drivers.Store.
func (c *Crashable) List(ctx context.Context, ct string, o *drivers.ListOptions) (drivers.Page, error) {
	if c.dead.Load() {
		return drivers.Page{}, errCrashed
	}
	return c.Store.List(ctx, ct, o)
}

// Engine is what the scenarios call: an *index.Engine, or several engines
// of a cluster behind one front that calls each queue's owner
// (ClusterEngine).
type Engine interface {
	CreateQueue(ctx context.Context, ref index.QueueRef, meta json.RawMessage) (bool, error)
	Queue(ctx context.Context, ref index.QueueRef) (index.QueueInfo, bool, error)
	DeleteQueue(ctx context.Context, ref index.QueueRef) error
	ListQueues(ctx context.Context, project, marker string, limit int, detailed bool) ([]index.QueueInfo, error)
	Stats(ctx context.Context, ref index.QueueRef) (index.Stats, error)
	Post(ctx context.Context, ref index.QueueRef, clientID string, msgs []index.NewMessage) ([]string, error)
	List(ctx context.Context, ref index.QueueRef, o index.ListOptions) ([]index.Message, error)
	Pop(ctx context.Context, ref index.QueueRef, n int) ([]index.Message, error)
	DeleteMessage(ctx context.Context, ref index.QueueRef, id, claimID string) error
	Claim(ctx context.Context, ref index.QueueRef, o index.ClaimOptions) (*index.Claim, error)
	GetClaim(ctx context.Context, ref index.QueueRef, id string) (*index.Claim, error)
	ReleaseClaim(ctx context.Context, ref index.QueueRef, id string) error
	Close() error
}

var _ Engine = (*index.Engine)(nil)

// Crasher kills what Harness.Open opened, as kill -9 would.
type Crasher interface{ Crash() }

// Harness opens engines over one store for a scenario.
type Harness struct {
	T     *testing.T
	Store drivers.Store
	Clock *Clock
	// Project keeps scenarios of different runs apart on a shared store.
	Project string
	// Opts, if set, adjusts the engine options of every engine opened.
	Opts func(*index.Options)
	// OpenEngine, if set, is what Open opens instead of one engine over
	// Store: several nodes of a cluster (RunCluster). It closes what it
	// opened when the test ends.
	OpenEngine func(h *Harness) (Engine, Crasher)
}

// Open opens an engine over h.Store (wrapped so that it can crash) and
// closes it when the test ends.
func (h *Harness) Open() (Engine, Crasher) {
	h.T.Helper()
	if h.OpenEngine != nil {
		return h.OpenEngine(h)
	}
	e, c := h.openEngine(h.Store, nil)
	h.T.Cleanup(func() { e.Close() })
	return e, c
}

// openEngine opens one engine over st (wrapped so that it can crash),
// with fence (nil: a single node).
func (h *Harness) openEngine(st drivers.Store, fence index.Fence) (*index.Engine, *Crashable) {
	h.T.Helper()
	c := &Crashable{Store: st}
	o := index.Options{Store: c, Clock: h.Clock, Logger: zerolog.Nop(), NoJanitor: true, SnapshotLogs: 4, Fence: fence}
	if h.Opts != nil {
		h.Opts(&o)
	}
	e, err := index.Open(context.Background(), o)
	if err != nil {
		h.T.Fatalf("index.Open: %v", err)
	}
	return e, c
}

// Ref names a queue of the harness's project.
func (h *Harness) Ref(name string) index.QueueRef {
	return index.QueueRef{Project: h.Project, Name: name}
}

// Run runs every scenario. With short, the heavier ones do less (for
// remote stores that take milliseconds per request).
func Run(t *testing.T, s drivers.Store, short bool) {
	project := fmt.Sprintf("et-%d", time.Now().UnixNano())
	h := func(t *testing.T) *Harness { return &Harness{T: t, Store: s, Clock: NewClock(), Project: project} }
	t.Run("Lifecycle", func(t *testing.T) { Lifecycle(h(t)) })
	t.Run("CrashRecovery", func(t *testing.T) { CrashRecovery(h(t), short) })
	t.Run("JournalFencing", func(t *testing.T) { JournalFencing(h(t)) })
	// Each queue's own logs, without the node's journal.
	logs := func(t *testing.T) *Harness {
		hh := h(t)
		hh.Opts = func(o *index.Options) { o.NoJournal = true }
		return hh
	}
	t.Run("Fencing", func(t *testing.T) { Fencing(logs(t)) })
	t.Run("CrashRecoveryLogs", func(t *testing.T) { CrashRecovery(logs(t), true) })
	t.Run("DeadLetter", func(t *testing.T) { DeadLetter(h(t)) })
	t.Run("ConcurrentConsumers", func(t *testing.T) { ConcurrentConsumers(h(t), short) })
}

var ctx = context.Background()

// Eventually polls cond until it holds, failing the test after 30 s.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	drivertest.Eventually(t, what, cond)
}

// idle waits a moment before a consumer that found nothing asks again.
func idle() { <-time.After(time.Millisecond) }

func post(t *testing.T, e Engine, ref index.QueueRef, client string, bodies ...string) []string {
	t.Helper()
	// The queue's default TTL, as the HTTP layer resolves it.
	ttl := int64(3600)
	if info, _, err := e.Queue(ctx, ref); err == nil {
		if d := index.ParseSettings(info.Metadata).DefaultTTL; d > 0 {
			ttl = d
		}
	}
	msgs := make([]index.NewMessage, len(bodies))
	for i, b := range bodies {
		msgs[i] = index.NewMessage{Body: json.RawMessage(b), TTL: ttl}
	}
	ids, err := e.Post(ctx, ref, client, msgs)
	if err != nil {
		t.Fatalf("Post: %v", err)
	}
	return ids
}

func listAll(t *testing.T, e Engine, ref index.QueueRef) []index.Message {
	t.Helper()
	m, err := e.List(ctx, ref, index.ListOptions{Limit: 1 << 30, Echo: true, IncludeClaimed: true, IncludeDelayed: true})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return m
}

func bodiesOf(ms []index.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = string(m.Body)
	}
	return out
}

// Lifecycle: a queue from creation to deletion, with metadata, claims,
// delays and TTL, and a clean reopen in the middle.
func Lifecycle(h *Harness) {
	t := h.T
	e, _ := h.Open()
	ref := h.Ref("life")
	created, err := e.CreateQueue(ctx, ref, json.RawMessage(`{"color":"blue","_default_message_ttl":120}`))
	if err != nil || !created {
		t.Fatalf("CreateQueue = %v, %v", created, err)
	}
	if again, err := e.CreateQueue(ctx, ref, nil); err != nil || again {
		t.Fatalf("second CreateQueue = %v, %v; want false, nil", again, err)
	}
	ids := post(t, e, ref, "a", `{"n":1}`, `{"n":2}`, `[3]`, `"four"`)
	if _, err := e.Post(ctx, ref, "a", []index.NewMessage{{Body: json.RawMessage(`{"n":5}`), TTL: 3600, Delay: 60}, {Body: json.RawMessage(`null`), TTL: 3600}}); err != nil {
		t.Fatal(err)
	}
	st, err := e.Stats(ctx, ref)
	if err != nil || st.Total != 6 || st.Delayed != 1 || st.Free != 5 {
		t.Fatalf("Stats = %+v, %v", st, err)
	}
	c, err := e.Claim(ctx, ref, index.ClaimOptions{TTL: 60, Grace: 30, Limit: 10})
	if err != nil || c == nil || len(c.Messages) != 5 {
		t.Fatalf("Claim = %+v, %v; want the 5 visible messages", c, err)
	}
	if got := bodiesOf(c.Messages); !slices.Equal(got, []string{`{"n":1}`, `{"n":2}`, `[3]`, `"four"`, `null`}) {
		t.Fatalf("claimed bodies %q", got)
	}
	if c.Messages[0].TTL != 120 {
		t.Errorf("message ttl %d, want the queue default 120", c.Messages[0].TTL)
	}
	if err := e.DeleteMessage(ctx, ref, ids[0], c.ID); err != nil {
		t.Fatal(err)
	}
	// Reopen cleanly: the state comes back from the store.
	e.Close()
	e, _ = h.Open()
	info, exists, err := e.Queue(ctx, ref)
	if err != nil || !exists || !strings.Contains(string(info.Metadata), `"color":"blue"`) {
		t.Fatalf("Queue after reopen = %s, %v, %v", info.Metadata, exists, err)
	}
	got, err := e.GetClaim(ctx, ref, c.ID)
	if err != nil || len(got.Messages) != 4 {
		t.Fatalf("GetClaim after reopen = %+v, %v", got, err)
	}
	h.Clock.Advance(61 * time.Second) // the claim expires, the delay passes
	c2, err := e.Claim(ctx, ref, index.ClaimOptions{TTL: 60, Grace: 60, Limit: 3})
	if err != nil || c2 == nil || len(c2.Messages) != 3 || string(c2.Messages[0].Body) != `{"n":2}` {
		t.Fatalf("claim after expiry = %+v, %v", c2, err)
	}
	if c2.Messages[0].ClaimCount != 2 {
		t.Errorf("claim count %d, want 2", c2.Messages[0].ClaimCount)
	}
	popped, err := e.Pop(ctx, ref, 10)
	if err != nil || len(popped) != 2 {
		t.Fatalf("Pop = %d, %v; want the 2 free messages", len(popped), err)
	}
	// Claimed messages outlive their TTL by the claim's grace.
	h.Clock.Advance(100 * time.Second) // 161 s after posting: past ttl 120
	if left := listAll(t, e, ref); len(left) != 3 {
		t.Fatalf("after ttl, %d messages left, want the 3 claimed ones", len(left))
	}
	h.Clock.Advance(30 * time.Second) // claim ended at 121 s + 60 s grace = 181 s
	if left := listAll(t, e, ref); len(left) != 0 {
		t.Fatalf("after claim and grace, %d messages left", len(left))
	}
	if err := e.DeleteQueue(ctx, ref); err != nil {
		t.Fatal(err)
	}
	if _, exists, _ := e.Queue(ctx, ref); exists {
		t.Fatal("queue exists after delete")
	}
	if left := listAll(t, e, ref); len(left) != 0 {
		t.Fatalf("deleted queue lists %d", len(left))
	}
	// A queue made again under the same name starts empty.
	post(t, e, ref, "a", `{"new":true}`)
	if left := listAll(t, e, ref); len(left) != 1 {
		t.Fatalf("recreated queue lists %d, want 1", len(left))
	}
	qs, err := e.ListQueues(ctx, h.Project, "", 10, true)
	if err != nil || len(qs) != 1 || qs[0].Name != "life" {
		t.Fatalf("ListQueues = %+v, %v", qs, err)
	}
}

// CrashRecovery: concurrent producers and a consumer; the engine crashes
// (no Close) at a random moment, and every acknowledged post and delete is
// found as acknowledged after reopening, in post order.
func CrashRecovery(h *Harness, short bool) {
	t := h.T
	ref := h.Ref("crash")
	rounds, producers, perProducer := 3, 8, 25
	if short {
		rounds, producers, perProducer = 2, 4, 10
	}
	acked := map[string]string{} // id -> body of every acknowledged post
	deleted := map[string]bool{}
	for round := range rounds {
		e, crash := h.Open()
		var mu sync.Mutex
		var wg, pwg sync.WaitGroup
		var producing atomic.Bool
		producing.Store(true)
		crashAt := len(deleted) + (round+1)*producers*perProducer/4
		for p := range producers {
			pwg.Go(func() {
				for i := range perProducer {
					b := fmt.Sprintf(`{"r":%d,"p":%d,"i":%d}`, round, p, i)
					ids, err := e.Post(ctx, ref, "c", []index.NewMessage{{Body: json.RawMessage(b), TTL: 3600}})
					if err != nil {
						return // crashed
					}
					mu.Lock()
					acked[ids[0]] = b
					mu.Unlock()
				}
			})
		}
		wg.Go(func() {
			for {
				c, err := e.Claim(ctx, ref, index.ClaimOptions{TTL: 60, Grace: 60, Limit: 5})
				if err != nil {
					return
				}
				if c == nil {
					if !producing.Load() {
						return
					}
					idle()
					continue
				}
				for _, m := range c.Messages {
					if err := e.DeleteMessage(ctx, ref, m.ID, c.ID); err != nil {
						return
					}
					mu.Lock()
					deleted[m.ID] = true
					n := len(deleted)
					mu.Unlock()
					if n == crashAt {
						crash.Crash() // in the middle of the traffic
					}
				}
			}
		})
		pwg.Wait()
		producing.Store(false)
		wg.Wait()
		crash.Crash()
		e2, _ := h.Open()
		got := listAll(t, e2, ref)
		seen := map[string]bool{}
		for _, m := range got {
			seen[m.ID] = true
			if deleted[m.ID] {
				t.Fatalf("round %d: message %s was acknowledged deleted but is back", round, m.ID)
			}
		}
		for id, b := range acked {
			if !deleted[id] && !seen[id] {
				t.Fatalf("round %d: acknowledged message %s (%s) lost", round, id, b)
			}
		}
		for i := 1; i < len(got); i++ {
			if got[i].Seq <= got[i-1].Seq {
				t.Fatalf("round %d: not in post order at %d", round, i)
			}
		}
		e2.Close()
		h.Clock.Advance(120 * time.Second) // old claims lapse before the next round
	}
}

// JournalFencing: two engines on one store, each with its journal (one
// node per store is the rule; this is what happens when it is broken).
// The first to write a journal number keeps writing; the other is refused
// for good, so nothing it holds (older than what the first wrote) reaches
// the store, and nothing the first acknowledged is lost.
func JournalFencing(h *Harness) {
	t := h.T
	if h.Store.Capabilities().CreateOnly == drivers.CreateOnlyNone {
		t.Skip("the store cannot refuse an overwrite: fencing needs create-only puts (docs/storage.md)")
	}
	ref := h.Ref("jfence")
	a, _ := h.Open()
	b, _ := h.Open()
	var acked []string
	for _, body := range []string{`"a1"`, `"a2"`} {
		ids, err := a.Post(ctx, ref, "c", []index.NewMessage{{Body: json.RawMessage(body), TTL: 3600}})
		if err != nil {
			t.Fatal(err)
		}
		acked = append(acked, ids...)
	}
	for _, body := range []string{`"b1"`, `"b2"`} {
		if _, err := b.Post(ctx, ref, "c", []index.NewMessage{{Body: json.RawMessage(body), TTL: 3600}}); !errors.Is(err, index.ErrFenced) {
			t.Fatalf("b's post %s over a's journal: %v, want ErrFenced", body, err)
		}
	}
	ids, err := a.Post(ctx, ref, "c", []index.NewMessage{{Body: json.RawMessage(`"a3"`), TTL: 3600}})
	if err != nil {
		t.Fatalf("a after b was refused: %v", err)
	}
	acked = append(acked, ids...)
	c, _ := h.Open()
	got := listAll(t, c, ref)
	var have []string
	for _, m := range got {
		have = append(have, m.ID)
	}
	if !slices.Equal(have, acked) {
		t.Fatalf("after both: %v, want exactly a's %v", have, acked)
	}
}

// Fencing: two engines write one queue. Whichever finds its next log
// sequence taken stops writing, fails that request and reloads; nothing
// either of them acknowledged is lost.
func Fencing(h *Harness) {
	t := h.T
	if h.Store.Capabilities().CreateOnly == drivers.CreateOnlyNone {
		t.Skip("the store cannot refuse an overwrite: fencing needs create-only puts (docs/storage.md)")
	}
	ref := h.Ref("fence")
	a, _ := h.Open()
	b, _ := h.Open()
	var acked []string
	postOK := func(e Engine, body string) error {
		ids, err := e.Post(ctx, ref, "c", []index.NewMessage{{Body: json.RawMessage(body), TTL: 3600}})
		if err == nil {
			acked = append(acked, ids[0])
		}
		return err
	}
	if err := postOK(a, `"a1"`); err != nil {
		t.Fatal(err)
	}
	if err := postOK(b, `"b1"`); err != nil { // b loads after a1: no conflict
		t.Fatal(err)
	}
	err := postOK(a, `"a2"`) // a still thinks log 2 is free
	if !errors.Is(err, index.ErrFenced) {
		t.Fatalf("a's write over b's log: %v, want ErrFenced", err)
	}
	if err := postOK(a, `"a3"`); err != nil { // a reloaded and goes on
		t.Fatalf("a after reload: %v", err)
	}
	if err := postOK(b, `"b2"`); !errors.Is(err, index.ErrFenced) {
		t.Fatalf("b's write over a's log: %v, want ErrFenced", err)
	}
	if err := postOK(b, `"b3"`); err != nil {
		t.Fatalf("b after reload: %v", err)
	}
	c, _ := h.Open()
	got := listAll(t, c, ref)
	var ids []string
	for _, m := range got {
		ids = append(ids, m.ID)
	}
	if !slices.Equal(ids, acked) {
		t.Fatalf("after fencing, queue holds %v (%q), want every acknowledged post %v", ids, bodiesOf(got), acked)
	}
}

// DeadLetter: a message claimed _max_claim_count times moves to the
// dead-letter queue on its next claim, once, with its body.
func DeadLetter(h *Harness) {
	t := h.T
	e, _ := h.Open()
	ref, dlq := h.Ref("poison"), h.Ref("poison-dlq")
	meta := `{"_max_claim_count":2,"_dead_letter_queue":"poison-dlq","_dead_letter_queue_messages_ttl":600}`
	if _, err := e.CreateQueue(ctx, ref, json.RawMessage(meta)); err != nil {
		t.Fatal(err)
	}
	post(t, e, ref, "c", `{"bad":1}`, `{"good":2}`)
	for i := range 2 {
		c, err := e.Claim(ctx, ref, index.ClaimOptions{TTL: 60, Grace: 60, Limit: 1})
		if err != nil || c == nil || string(c.Messages[0].Body) != `{"bad":1}` {
			t.Fatalf("claim %d = %+v, %v", i, c, err)
		}
		if err := e.ReleaseClaim(ctx, ref, c.ID); err != nil {
			t.Fatal(err)
		}
	}
	c, err := e.Claim(ctx, ref, index.ClaimOptions{TTL: 60, Grace: 60, Limit: 1})
	if err != nil || c == nil || string(c.Messages[0].Body) != `{"good":2}` {
		t.Fatalf("third claim = %+v, %v; want the good message, the bad one moved aside", c, err)
	}
	// The move runs in the background: poll for its end.
	Eventually(t, "the message to reach the dead-letter queue and leave its own", func() bool {
		return len(listAll(t, e, dlq)) >= 1 && len(listAll(t, e, ref)) == 1
	})
	got := listAll(t, e, dlq)
	if len(got) != 1 || string(got[0].Body) != `{"bad":1}` || got[0].TTL != 600 {
		t.Fatalf("dead-letter queue holds %q (ttl of the first %d), want one {\"bad\":1} with ttl 600", bodiesOf(got), got[0].TTL)
	}
	// And after a restart nothing moves twice.
	e.Close()
	e2, _ := h.Open()
	if got := listAll(t, e2, dlq); len(got) != 1 {
		t.Fatalf("after reopen the dead-letter queue holds %d", len(got))
	}
}

// ConcurrentConsumers: producers and claiming consumers at once; every
// message is delivered to exactly one claim and deleted once.
func ConcurrentConsumers(h *Harness, short bool) {
	t := h.T
	e, _ := h.Open()
	ref := h.Ref("busy")
	producers, per, consumers := 8, 40, 4
	if short {
		producers, per, consumers = 4, 10, 3
	}
	total := producers * per
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for i := range per {
				post(t, e, ref, "c", fmt.Sprintf(`"%d-%d"`, p, i))
			}
		})
	}
	var mu sync.Mutex
	got := map[string]int{}
	var done atomic.Int64
	for range consumers {
		wg.Go(func() {
			for done.Load() < int64(total) {
				c, err := e.Claim(ctx, ref, index.ClaimOptions{TTL: 600, Grace: 60, Limit: 7})
				if err != nil {
					t.Errorf("Claim: %v", err)
					return
				}
				if c == nil {
					idle()
					continue
				}
				for _, m := range c.Messages {
					mu.Lock()
					got[string(m.Body)]++
					mu.Unlock()
					if err := e.DeleteMessage(ctx, ref, m.ID, c.ID); err != nil {
						t.Errorf("DeleteMessage: %v", err)
						return
					}
					done.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if len(got) != total {
		t.Fatalf("consumed %d distinct messages, want %d", len(got), total)
	}
	for b, n := range got {
		if n != 1 {
			t.Fatalf("message %s delivered %d times", b, n)
		}
	}
}
