package index_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cistern-mq/cistern/drivers"
	"github.com/cistern-mq/cistern/drivers/drivertest"
	"github.com/cistern-mq/cistern/drivers/faultstore"
	"github.com/cistern-mq/cistern/drivers/fsdriver"
	"github.com/cistern-mq/cistern/drivers/memdriver"
	"github.com/cistern-mq/cistern/index"
	"github.com/cistern-mq/cistern/index/enginetest"
)

// The fault-injection suite of the engine (docs/testing.md): random faults
// by seed under concurrent producers and consumers, then proof that
// nothing acknowledged was lost, no body was wrong, no message was in two
// live claims, order held, and the engine recovered by itself.

// faultSeeds are the seeds to run: CISTERN_FAULT_SEEDS (comma-separated)
// replays a failure or explores more; by default two fixed seeds.
func faultSeeds(t *testing.T) []uint64 {
	env := os.Getenv("CISTERN_FAULT_SEEDS")
	if env == "" {
		return []uint64{1, 2}
	}
	var out []uint64
	for _, f := range strings.Split(env, ",") {
		s, err := strconv.ParseUint(strings.TrimSpace(f), 10, 64)
		if err != nil {
			t.Fatalf("CISTERN_FAULT_SEEDS: %v", err)
		}
		out = append(out, s)
	}
	return out
}

// transientFaults are faults the engine is meant to ride out: unavailable
// writes (retried), lost answers of unavailable writes (retried, then
// recognised as landed), timeouts, latency, and failed reads (the request
// fails, nothing is half done). One mix still fails a batch: a lost answer
// whose checking read fails too is taken for fencing.
func transientFaults(f *faultstore.Store) {
	w := []faultstore.Verb{faultstore.Put, faultstore.Delete, faultstore.DeleteKeys, faultstore.CreateContainer}
	r := []faultstore.Verb{faultstore.Get, faultstore.List, faultstore.Head}
	for _, rule := range []faultstore.Rule{
		{Verbs: w, Prob: 0.04, Err: drivers.ErrUnavailable},
		{Verbs: w, Prob: 0.03, Effect: faultstore.LostAnswer},
		{Verbs: r, Prob: 0.03, Err: drivers.ErrUnavailable},
		{Verbs: r, Prob: 0.005, Err: drivers.ErrInvalid},
		{Prob: 0.02, Effect: faultstore.Timeout, Latency: 5 * time.Second},
		{Prob: 0.05, Effect: faultstore.Delay, Latency: time.Second},
	} {
		f.Add(rule)
	}
}

// allFaults adds what makes the engine fail writes it had accepted into
// a batch: errors it does not retry (invalid, a spurious precondition
// failure, not supported), lost answers of those, and torn or flipped
// whole-object reads (recovery's reads, which checksums guard). Ranged
// body reads get errors only: a torn or flipped ranged read has no
// checksum to catch it (docs/testing.md).
func allFaults(f *faultstore.Store) {
	transientFaults(f)
	w := []faultstore.Verb{faultstore.Put, faultstore.Delete, faultstore.DeleteKeys, faultstore.CreateContainer}
	for _, rule := range []faultstore.Rule{
		{Verbs: w, Prob: 0.01, Err: drivers.ErrInvalid},
		{Verbs: []faultstore.Verb{faultstore.Put}, Prob: 0.01, Err: drivers.ErrPreconditionFailed},
		{Verbs: []faultstore.Verb{faultstore.Put}, Prob: 0.005, Err: drivers.ErrNotSupported},
		{Verbs: w, Prob: 0.01, Effect: faultstore.LostAnswer, Err: drivers.ErrInvalid},
		{Verbs: []faultstore.Verb{faultstore.Get}, Gets: faultstore.GetsWhole, Prob: 0.05, Effect: faultstore.Torn},
		{Verbs: []faultstore.Verb{faultstore.Get}, Gets: faultstore.GetsWhole, Prob: 0.05, Effect: faultstore.Flip},
	} {
		f.Add(rule)
	}
}

// yieldSleep stands for latency without waiting for it: the goroutine
// gives way, so that requests interleave as they would behind a slow store.
func yieldSleep(c context.Context, _ time.Duration) error {
	runtime.Gosched()
	return c.Err()
}

// ledger is what the clients were told and what they saw.
type ledger struct {
	t        *testing.T
	mu       sync.Mutex
	acked    map[string]string // id -> body of every acknowledged post
	byBody   map[string]string // body -> the id it was first seen or acked under
	seen     map[string]string // id -> the body it was first read with
	holder   map[string]string // id -> the claim that holds it, while live
	deleted  map[string]bool   // acknowledged deletes
	tried    map[string]bool   // deletes that failed: they may have landed
	posted   map[string]bool   // every body sent, acknowledged or not
	order    map[int][]string  // producer -> ids acknowledged, in order
	failures atomic.Int64
	phase    string // what the clients are doing, for messages
}

func newLedger(t *testing.T) *ledger {
	return &ledger{t: t, acked: map[string]string{}, byBody: map[string]string{}, seen: map[string]string{},
		holder: map[string]string{}, deleted: map[string]bool{}, tried: map[string]bool{}, posted: map[string]bool{}, order: map[int][]string{}}
}

// read checks one body read under id: it must be a body that was posted,
// the one acknowledged for id if any, the same at every read, and under no
// other id.
func (l *ledger) read(id, body string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.checkLocked(id, body)
}

func (l *ledger) checkLocked(bare, body string) {
	id := bare
	t := l.t
	if l.phase != "" {
		id = l.phase + ": " + id
	}
	if !l.posted[body] {
		t.Errorf("id %s read with body %q, which nobody posted", id, body)
	}
	if a, ok := l.acked[bare]; ok && a != body {
		t.Errorf("id %s acknowledged with body %s, read with %s", id, a, body)
	}
	if s, ok := l.seen[bare]; ok && s != body {
		t.Errorf("id %s read with body %s, earlier with %s", id, body, s)
	}
	l.seen[bare] = body
	if other, ok := l.byBody[body]; ok && other != bare {
		t.Errorf("body %s under two ids: %s and %s", body, other, id)
	}
	l.byBody[body] = bare
}

// TestFaultRandomTransient runs producers and consumers through random
// transient faults, on mem and on fs, for each seed.
func TestFaultRandomTransient(t *testing.T) { runRandom(t, transientFaults) }

func runRandom(t *testing.T, faults func(*faultstore.Store)) {
	for _, seed := range faultSeeds(t) {
		t.Run(fmt.Sprintf("mem/seed=%d", seed), func(t *testing.T) { faultRandom(t, memdriver.New(), seed, faults) })
		t.Run(fmt.Sprintf("fs/seed=%d", seed), func(t *testing.T) {
			s, err := fsdriver.New(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			faultRandom(t, s, seed, faults)
		})
	}
}

func faultRandom(t *testing.T, base drivers.Store, seed uint64, faults func(*faultstore.Store)) {
	t.Logf("replay with CISTERN_FAULT_SEEDS=%d", seed)
	f := faultstore.New(base, faultstore.Options{Seed: seed, Sleep: yieldSleep})
	clk := enginetest.NewClock()
	e := openFaultClock(t, f, clk)
	refs := []index.QueueRef{{Project: "p", Name: "f1"}, {Project: "p", Name: "f2"}}
	l := newLedger(t)
	faults(f)

	const producers, perProducer, consumers = 6, 40, 3
	var pwg, cwg sync.WaitGroup
	var producing atomic.Bool
	producing.Store(true)
	for p := range producers {
		pwg.Go(func() {
			ref := refs[p%len(refs)]
			for i := 0; i < perProducer; {
				n := 1 + i%3 // posts of one, two and three messages
				msgs := make([]index.NewMessage, 0, n)
				var bs []string
				for j := 0; j < n && i < perProducer; j++ {
					b := fmt.Sprintf(`{"seed":%d,"p":%d,"i":%d}`, seed, p, i)
					bs = append(bs, b)
					msgs = append(msgs, index.NewMessage{Body: json.RawMessage(b), TTL: 3600})
					i++
				}
				l.mu.Lock()
				for _, b := range bs {
					l.posted[b] = true
				}
				l.mu.Unlock()
				ids, err := e.Post(ctx, ref, "c", msgs)
				if err != nil {
					l.failures.Add(1)
					continue
				}
				l.mu.Lock()
				for k, id := range ids {
					if prev, ok := l.acked[id]; ok {
						t.Errorf("id %s acknowledged twice: for %s and for %s", id, prev, bs[k])
					}
					l.acked[id] = bs[k]
					l.order[p] = append(l.order[p], ref.Name+"/"+id)
				}
				l.mu.Unlock()
			}
		})
	}
	for c := range consumers {
		cwg.Go(func() {
			ref := refs[c%len(refs)]
			for {
				cl, err := e.Claim(ctx, ref, index.ClaimOptions{TTL: 600, Grace: 60, Limit: 5})
				if err != nil {
					l.failures.Add(1)
					continue
				}
				if cl == nil {
					if !producing.Load() {
						return
					}
					runtime.Gosched()
					continue
				}
				l.mu.Lock()
				for i, m := range cl.Messages {
					if i > 0 && m.Seq <= cl.Messages[i-1].Seq {
						t.Errorf("claim %s out of order at %d", cl.ID, i)
					}
					if h, ok := l.holder[m.ID]; ok {
						t.Errorf("message %s in claim %s while claim %s holds it", m.ID, cl.ID, h)
					}
					if l.deleted[m.ID] {
						t.Errorf("message %s was deleted (acknowledged) but is claimed again", m.ID)
					}
					l.holder[m.ID] = cl.ID
					l.checkLocked(m.ID, string(m.Body))
				}
				l.mu.Unlock()
				for i, m := range cl.Messages {
					if i%4 == 3 {
						continue // left claimed: it comes back when the claim expires
					}
					if err := e.DeleteMessage(ctx, ref, m.ID, cl.ID); err != nil {
						l.failures.Add(1)
						l.mu.Lock()
						l.tried[m.ID] = true
						l.mu.Unlock()
						continue
					}
					l.mu.Lock()
					l.deleted[m.ID] = true
					delete(l.holder, m.ID)
					l.mu.Unlock()
				}
			}
		})
	}
	pwg.Wait()
	producing.Store(false)
	cwg.Wait()
	injected := f.Injected()
	t.Logf("faults injected: %v; requests that failed: %d; acknowledged posts: %d", injected, l.failures.Load(), len(l.acked))
	var n int64
	for _, c := range injected {
		n += c
	}
	if n < 10 {
		t.Fatalf("only %d faults injected: the rules did not reach the engine", n)
	}

	// The store heals; the same engine must recover without a restart.
	f.Clear()
	probe := index.QueueRef{Project: "p", Name: "probe"}
	drivertest.Eventually(t, "a post to succeed once the store is back", func() bool {
		_, err := e.Post(ctx, probe, "c", []index.NewMessage{{Body: json.RawMessage(`"probe"`), TTL: 3600}})
		return err == nil
	})
	checkAll(t, l, e, refs, "same engine")

	// Claims left open expire; everything left can be claimed, with its
	// own body.
	clk.Advance(700 * time.Second)
	l.mu.Lock()
	l.phase = "claims after expiry"
	clear(l.holder)
	l.mu.Unlock()
	for _, ref := range refs {
		for {
			cl, err := e.Claim(ctx, ref, index.ClaimOptions{TTL: 600, Grace: 60, Limit: 20})
			if err != nil {
				t.Fatalf("claim after recovery: %v", err)
			}
			if cl == nil {
				break
			}
			for _, m := range cl.Messages {
				if l.deleted[m.ID] {
					t.Errorf("acknowledged delete of %s undone", m.ID)
				}
				l.read(m.ID, string(m.Body))
			}
		}
	}
	// And a fresh engine over the store underneath finds the same.
	checkAll(t, l, openFaultClock(t, base, clk), refs, "reopened")
}

// checkAll lists both queues and checks them against the ledger: every
// acknowledged post not acknowledged deleted is there with its body,
// nothing acknowledged deleted is, and each producer's posts are in the
// order they were acknowledged.
func checkAll(t *testing.T, l *ledger, e *index.Engine, refs []index.QueueRef, when string) {
	t.Helper()
	l.mu.Lock()
	l.phase = when
	l.mu.Unlock()
	where := map[string]uint64{} // "queue/id" -> seq
	for _, ref := range refs {
		ms, err := e.List(ctx, ref, index.ListOptions{Limit: 1 << 30, Echo: true, IncludeClaimed: true, IncludeDelayed: true})
		if err != nil {
			t.Fatalf("%s: List: %v", when, err)
		}
		for i, m := range ms {
			if i > 0 && m.Seq <= ms[i-1].Seq {
				t.Errorf("%s: %s listed out of order at %d", when, ref.Name, i)
			}
			if l.deleted[m.ID] {
				t.Errorf("%s: %s was deleted (acknowledged) but is listed", when, m.ID)
			}
			l.read(m.ID, string(m.Body))
			where[ref.Name+"/"+m.ID] = m.Seq
		}
	}
	lost := 0
	for p, ids := range l.order {
		var last uint64
		for _, qid := range ids {
			id := qid[strings.IndexByte(qid, '/')+1:]
			seq, ok := where[qid]
			if l.deleted[id] {
				continue
			}
			if !ok && l.tried[id] {
				continue // a delete that failed may have landed
			}
			if !ok {
				lost++
				if lost <= 5 {
					t.Errorf("%s: acknowledged post %s (%s) lost", when, qid, l.acked[id])
				}
				continue
			}
			if seq <= last {
				t.Errorf("%s: producer %d's posts out of order at %s", when, p, qid)
			}
			last = seq
		}
	}
	if lost > 0 {
		t.Errorf("%s: %d acknowledged posts lost", when, lost)
	}
}
