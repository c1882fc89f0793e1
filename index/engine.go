// Package index is Cistern's queue engine: per queue, an in-memory index of
// live messages and claims, made durable as a log of group-committed batch
// objects in a drivers.Store and rebuilt from the store after any crash.
// docs/architecture.md describes the formats and the invariants.
package index

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/rs/zerolog"

	"github.com/cistern-mq/cistern/drivers"
)

// Errors of the engine, for errors.Is. Store failures come through as the
// drivers' kinds (drivers.ErrUnavailable above all).
var (
	ErrQueueNotFound       = errors.New("queue does not exist")
	ErrMessageNotFound     = errors.New("message does not exist")
	ErrClaimNotFound       = errors.New("claim does not exist or has expired")
	ErrMessageClaimed      = errors.New("message is claimed; it cannot be deleted without a valid claim ID")
	ErrMessageNotClaimed   = errors.New("a claim was specified, but the message is not currently claimed")
	ErrMessageNotClaimedBy = errors.New("message is claimed by another claim")
	// ErrClaimUnknown: a delete named a claim that does not exist, has
	// expired or is not a claim id at all (Zaqar's ClaimDoesNotExist).
	ErrClaimUnknown = errors.New("the specified claim does not exist or has expired")
	// ErrQueueDamaged: the catalog names a queue whose objects are
	// missing from the store (its container was removed behind Cistern's
	// back). Nothing is recreated silently: the queue refuses work until
	// an operator restores the objects or deletes the queue.
	ErrQueueDamaged = errors.New("the queue's objects are missing from the store")
	// ErrInvalidMessage: a message to post without a valid TTL or delay
	// (the HTTP layer resolves defaults and limits before posting).
	ErrInvalidMessage = errors.New("invalid message")
	// ErrFenced: another writer wrote this queue's next log object; this
	// node stopped writing the queue and reloads it on the next request.
	ErrFenced = errors.New("another writer took over the queue")
	ErrClosed = errors.New("engine is closed")
	// ErrMoved: the queue was migrated to another pool; ask the router
	// where it lives now.
	ErrMoved = errors.New("queue moved to another pool")
)

// Clock tells the time; tests inject a fake one.
type Clock interface{ Now() time.Time }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// Options configure an Engine. Zero values take the defaults.
type Options struct {
	Store  drivers.Store
	Clock  Clock
	Logger zerolog.Logger

	// BodyCacheBytes bounds the LRU of message bodies (default 64 MiB).
	BodyCacheBytes int64
	// MaxBatchBytes and MaxBatchRecords bound one log object (defaults
	// 8 MiB and 20000).
	MaxBatchBytes   int
	MaxBatchRecords int
	// A snapshot is written after SnapshotLogs log objects, or when
	// SnapshotInterval has passed since the last one and something was
	// logged (defaults 256 and 1 minute).
	SnapshotLogs     int
	SnapshotInterval time.Duration
	// IdleTimeout unloads a queue no request has touched for that long
	// (default 2 minutes); JanitorInterval is how often the engine sweeps
	// expired messages and idle queues (default 5 s).
	IdleTimeout     time.Duration
	JanitorInterval time.Duration
	// WriteRetries is how often a log write that found the store
	// unavailable is tried again before the queue gives up (default 3).
	WriteRetries int
	// NoJanitor turns the background janitor off (tests drive Janitor).
	NoJanitor bool
	// Fence, when set, is cluster mode: several nodes share the store, and
	// each queue's head is committed through the fence (fence.go).
	Fence Fence
	// NoJournal writes each queue's batches as log objects of its own
	// instead of through the node's journal (journal.go). Cluster mode
	// never journals.
	NoJournal bool
	// FoldBytes folds a queue out of the journal once the bodies it holds
	// in memory for it weigh that much (default 4 MiB); PinnedBytes folds
	// the heaviest queues when all of them together weigh more (default
	// 256 MiB). Otherwise a queue folds when a snapshot is due.
	FoldBytes   int
	PinnedBytes int

	foldBatches int // journaled batches that make a fold due (fold.go)
}

func (o *Options) defaults() error {
	if o.Store == nil {
		return errors.New("index: Options.Store is required")
	}
	if o.Clock == nil {
		o.Clock = systemClock{}
	}
	if o.BodyCacheBytes <= 0 {
		o.BodyCacheBytes = 64 << 20
	}
	if o.MaxBatchBytes <= 0 {
		o.MaxBatchBytes = 8 << 20
	}
	if o.MaxBatchRecords <= 0 {
		o.MaxBatchRecords = 20000
	}
	o.foldBatches = o.SnapshotLogs
	if o.SnapshotLogs <= 0 {
		o.SnapshotLogs = 256
		o.foldBatches = 4 * o.SnapshotLogs // fold.go: foldBatches
	}
	if o.SnapshotInterval <= 0 {
		o.SnapshotInterval = time.Minute
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 2 * time.Minute
	}
	if o.JanitorInterval <= 0 {
		o.JanitorInterval = 5 * time.Second
	}
	if o.WriteRetries <= 0 {
		o.WriteRetries = 3
	}
	if o.FoldBytes <= 0 {
		o.FoldBytes = 4 << 20
	}
	if o.PinnedBytes <= 0 {
		o.PinnedBytes = 256 << 20
	}
	return nil
}

// QueueRef names a queue: queues are scoped by project.
type QueueRef struct {
	Project string
	Name    string
}

func (r QueueRef) String() string { return r.Project + "/" + r.Name }

// Engine serves every queue of one store.
type Engine struct {
	opts       Options
	store      drivers.Store
	log        zerolog.Logger
	createOnly bool
	bodies     *bodyCache
	burned     burnedSeqs
	// absent remembers queues whose catalog entry was not there, so that
	// requests to a queue that does not exist cost one store read, not one
	// each. This engine writes every catalog entry of its store (one node
	// per store), so it knows when one appears.
	// In cluster mode an entry holds for the ownership epoch it was
	// learnt in only: another owner may have created the queue since.
	absent *lru.Cache[QueueRef, int64]
	fence  Fence // nil: single node
	// journal is the node's group commit for all its queues; nil in
	// cluster mode or with NoJournal.
	journal *journal
	dead    atomic.Pointer[DeadLetterPoster]
	// damaged remembers the queues found with their objects missing
	// (ErrQueueDamaged), for operators (DamagedQueues); a delete forgets.
	damaged *lru.Cache[QueueRef, struct{}]
	// depths remembers the depth of queues unloaded for idleness
	// (depth.go).
	depths *lru.Cache[QueueRef, depthSummary]

	mu     sync.Mutex
	queues map[QueueRef]*queue
	// moved remembers queues migrated away, so that a request routed here
	// before the move is sent on (ErrMoved) instead of making the queue
	// anew. Adopt and ClearMoved forget an entry.
	moved   map[QueueRef]bool
	closing bool // Close is folding the journal; requests still run
	closed  bool

	ops sync.WaitGroup // requests holding a queue
	wg  sync.WaitGroup // flushers, movers, cleaners, the janitor
	// trashMu serializes the removal of one trashed generation (trash.go).
	trashMu   [trashStripes]sync.Mutex
	trashSeed maphash.Seed
	stop      chan struct{}
}

// maxDamagedShown bounds how many damaged queues an engine remembers.
const maxDamagedShown = 100

// DamagedQueues lists the queues this engine found with their objects
// missing from the store since it started (at most the last 100), until
// they are deleted.
func (e *Engine) DamagedQueues() []QueueRef { return e.damaged.Keys() }

// absentCacheSize bounds how many missing queues an engine remembers.
const absentCacheSize = 1 << 16

func must[T any](v T, err error) T {
	if err != nil {
		panic(err) // only for arguments fixed in the code
	}
	return v
}

// Open starts an engine over opts.Store.
func Open(ctx context.Context, opts Options) (*Engine, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	if err := opts.Store.CreateContainer(ctx, controlContainer); err != nil {
		return nil, fmt.Errorf("index: create control container: %w", err)
	}
	e := &Engine{
		opts:       opts,
		store:      opts.Store,
		log:        opts.Logger,
		createOnly: opts.Store.Capabilities().CreateOnly != drivers.CreateOnlyNone,
		bodies:     newBodyCache(opts.BodyCacheBytes),
		absent:     must(lru.New[QueueRef, int64](absentCacheSize)),
		damaged:    must(lru.New[QueueRef, struct{}](maxDamagedShown)),
		depths:     must(lru.New[QueueRef, depthSummary](maxDepthSummaries)),
		fence:      opts.Fence,
		queues:     map[QueueRef]*queue{},
		moved:      map[QueueRef]bool{},
		trashSeed:  maphash.MakeSeed(),
		stop:       make(chan struct{}),
	}
	if !e.createOnly && e.fence == nil {
		e.log.Warn().Str("driver", opts.Store.Capabilities().Driver).
			Msg("store cannot refuse overwrites: log writes are not fenced, so run one Cistern node per store")
	}
	if e.fence == nil && !opts.NoJournal {
		e.journal = newJournal(e)
		if err := e.journal.recover(ctx); err != nil {
			return nil, err
		}
	}
	if e.fence != nil {
		// A single node stopped without Close (kill -9) may have left
		// batches in its journal that no queue's container holds yet;
		// cluster mode reads containers and heads only.
		j := newJournal(e)
		if err := j.recover(ctx); err != nil {
			return nil, err
		}
		if _, sections := j.stats(); sections > 0 {
			return nil, fmt.Errorf("index: the store's journal holds %d batches not folded into their queues "+
				"(a single node stopped without SIGTERM): start Cistern once on this store without -etcd and stop it with SIGTERM, "+
				"which folds them, then start the cluster", sections)
		}
	}
	e.wg.Go(func() { e.emptyTrash(context.Background()) })
	if !opts.NoJanitor {
		e.wg.Go(e.janitorLoop)
	}
	return e, nil
}

// Close stops the engine: it flushes every pending group commit, waits for
// its goroutines and unloads every queue.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed || e.closing {
		e.mu.Unlock()
		return nil
	}
	e.closing = true
	e.mu.Unlock()
	if e.journal != nil {
		// A clean stop leaves every queue folded and the journal empty,
		// so that the store holds each queue whole in its own container
		// (what cluster mode and migrations read). A fold releases what
		// the fold before it holds: two rounds.
		for range 2 {
			e.foldAll()
			e.waitFlushers(time.Minute)
		}
	}
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	// Requests under way finish first: their group commits still flush.
	e.ops.Wait()
	if e.journal != nil {
		// What they journaled is folded too.
		e.mu.Lock()
		for _, q := range e.queues {
			q.mu.Lock()
			if q.phase == phaseServing && q.exists && q.logsSinceSnap > 0 {
				q.snapDue = true
				q.startFlush()
			}
			q.mu.Unlock()
		}
		e.mu.Unlock()
	}
	close(e.stop)
	e.wg.Wait()
	if e.journal != nil {
		if err := e.journal.trim(context.Background()); err != nil {
			e.log.Warn().Err(err).Msg("trimming the journal at close failed")
		}
	}
	return nil
}

func (e *Engine) now() int64 { return e.opts.Clock.Now().UnixNano() }

// epoch is this node's ownership of ref: always (0, true) on a single node.
func (e *Engine) epoch(ref QueueRef) (int64, bool) {
	if e.fence == nil {
		return 0, true
	}
	return e.fence.Epoch(ref)
}

func newID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// acquire returns the loaded queue for ref with a reference held; release
// it with e.release. With create, a missing queue is created with meta.
func (e *Engine) acquire(ctx context.Context, ref QueueRef) (*queue, error) {
	for {
		e.mu.Lock()
		if e.closed {
			e.mu.Unlock()
			return nil, ErrClosed
		}
		if e.moved[ref] {
			e.mu.Unlock()
			return nil, ErrMoved
		}
		epoch, owned := e.epoch(ref)
		if !owned {
			e.mu.Unlock()
			return nil, fmt.Errorf("%w: %s", ErrNotOwner, ref)
		}
		e.ops.Add(1)
		q, ok := e.queues[ref]
		if ok && q.epoch != epoch {
			// Loaded under an ownership this node has lost since (and
			// gained again): what it holds may be old. Load anew.
			q.mu.Lock()
			if q.phase == phaseServing {
				q.leave(phaseStale)
			}
			q.mu.Unlock()
			delete(e.queues, ref)
			ok = false
		}
		if !ok {
			q = &queue{e: e, ref: ref, epoch: epoch, ready: make(chan struct{})}
			e.queues[ref] = q
			q.refs++
			e.mu.Unlock()
			err := q.load(ctx)
			q.mu.Lock()
			q.phase = phaseServing
			if err != nil {
				q.phase = phaseLoadFailed
			}
			q.mu.Unlock()
			q.lastUsed = e.now()
			close(q.ready)
			if err != nil {
				e.forget(q)
				e.release(q)
				return nil, err
			}
			return q, nil
		}
		q.refs++
		e.mu.Unlock()
		select {
		case <-q.ready:
		case <-ctx.Done():
			e.release(q)
			return nil, ctx.Err()
		}
		if q.currentPhase() == phaseServing {
			return q, nil
		}
		// Failed to load, stale or moved: drop it and look again (a moved
		// queue is in e.moved by now).
		e.release(q)
		e.forget(q)
	}
}

// forget drops q from the map unless another queue took its place.
func (e *Engine) forget(q *queue) {
	e.mu.Lock()
	if e.queues[q.ref] == q {
		delete(e.queues, q.ref)
	}
	e.mu.Unlock()
}

func (e *Engine) release(q *queue) {
	e.mu.Lock()
	q.refs--
	q.lastUsed = e.now()
	if q.refs == 0 && e.queues[q.ref] == q {
		// A queue that failed, was fenced or deleted is reloaded by the
		// next request; one that does not exist is not kept, so requests
		// for random names cannot fill memory. Lock order: e.mu, then q.mu.
		q.mu.Lock()
		drop := !q.serving() || !q.exists && q.open == nil && !q.flushing
		q.mu.Unlock()
		if drop {
			delete(e.queues, q.ref)
		}
	}
	e.mu.Unlock()
	e.ops.Done()
}

// withQueue runs f on the loaded queue under its lock.
// A queue that is frozen for a migration makes requests wait; one that
// was moved away answers ErrMoved, and one that failed or was deleted
// meanwhile is loaded again.
func (e *Engine) withQueue(ctx context.Context, ref QueueRef, f func(q *queue) error) error {
	for attempt := 0; ; attempt++ {
		q, err := e.acquire(ctx, ref)
		if err != nil {
			return err
		}
		q.mu.Lock()
		for q.frozen != nil && q.serving() {
			thaw := q.frozen
			q.mu.Unlock()
			select {
			case <-thaw:
			case <-ctx.Done():
				e.release(q)
				return ctx.Err()
			}
			q.mu.Lock()
		}
		if q.serving() {
			err = f(q)
			q.mu.Unlock()
			e.release(q)
			return err
		}
		moved := q.phase == phaseMoved
		q.mu.Unlock()
		e.release(q)
		if moved {
			return ErrMoved
		}
		if attempt >= 3 {
			return fmt.Errorf("%w: %s keeps failing to load", drivers.ErrUnavailable, ref)
		}
	}
}

func (e *Engine) janitorLoop() {
	t := time.NewTicker(e.opts.JanitorInterval)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
			e.Janitor()
		}
	}
}

// Janitor does one pass of background work: it drops expired messages and
// claims from memory, retries unfinished moves to dead-letter queues,
// writes snapshots that are due by time, and unloads
// queues that have been idle for Options.IdleTimeout.
func (e *Engine) Janitor() {
	now := e.now()
	e.mu.Lock()
	qs := make([]*queue, 0, len(e.queues))
	for _, q := range e.queues {
		select {
		case <-q.ready:
			qs = append(qs, q)
		default:
		}
	}
	e.mu.Unlock()
	type weight struct {
		q      *queue
		pinned int
	}
	var heavy []weight
	pinned := 0
	for _, q := range qs {
		q.mu.Lock()
		if q.serving() && q.exists && q.st.pinnedBytes > 0 {
			heavy = append(heavy, weight{q, q.st.pinnedBytes})
			pinned += q.st.pinnedBytes
		}
		if q.serving() && q.exists {
			q.st.sweep(now)
			if len(q.st.moving) > 0 && q.frozen == nil {
				// Moves to a dead-letter queue that failed (its owner or
				// store was away) are tried again.
				q.startMovers()
			}
			due := q.logsSinceSnap > 0 && time.Duration(now-q.lastSnapAt) >= e.opts.SnapshotInterval
			// Nothing new since the last fold, but the journal keeps what
			// the fold before it held: one more fold releases it.
			refold := q.logsSinceSnap == 0 && e.journal != nil && e.journal.has(q.ref)
			if q.open == nil && !q.flushing && (due || refold) {
				q.snapDue = true
				q.startFlush()
			}
		}
		q.mu.Unlock()
	}
	if pinned > e.opts.PinnedBytes {
		// Bodies held for the journal weigh too much: fold the heaviest
		// queues until half the bound is left.
		slices.SortFunc(heavy, func(a, b weight) int { return b.pinned - a.pinned })
		for _, w := range heavy {
			if pinned <= e.opts.PinnedBytes/2 {
				break
			}
			w.q.mu.Lock()
			if w.q.serving() {
				w.q.snapDue = true
				w.q.startFlush()
			}
			w.q.mu.Unlock()
			pinned -= w.pinned
		}
	}
	if e.journal != nil {
		e.foldUnloaded()
		if err := e.journal.trim(context.Background()); err != nil {
			e.log.Warn().Err(err).Msg("trimming the journal failed; the next pass tries again")
		}
	}
	var unloaded []*queue
	e.mu.Lock()
	for ref, q := range e.queues {
		select {
		case <-q.ready:
		default:
			continue
		}
		q.mu.Lock()
		idle := q.refs == 0 && q.open == nil && !q.flushing && !q.snapDue && len(q.movers) == 0 &&
			time.Duration(now-q.lastUsed) >= e.opts.IdleTimeout
		q.mu.Unlock()
		if idle && e.journal != nil && e.journal.has(ref) {
			idle = false // folds first (the snapshot interval is shorter)
		}
		if idle {
			delete(e.queues, ref)
			unloaded = append(unloaded, q)
		}
	}
	e.mu.Unlock()
	// Their depth is remembered outside the engine's lock: a summary
	// walks the queue, and no request reaches it any more.
	for _, q := range unloaded {
		q.mu.Lock()
		if q.serving() {
			q.summarize()
		}
		q.mu.Unlock()
	}
}

// Loaded returns how many queues are in memory.
func (e *Engine) Loaded() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.queues)
}

// Depth counts the queues in memory and the live messages in them (the
// in-memory view: queues not loaded are not counted).
func (e *Engine) Depth() (queues, messages int) {
	e.mu.Lock()
	qs := make([]*queue, 0, len(e.queues))
	for _, q := range e.queues {
		qs = append(qs, q)
	}
	e.mu.Unlock()
	for _, q := range qs {
		select {
		case <-q.ready:
		default:
			continue
		}
		q.mu.Lock()
		if q.serving() && q.exists {
			queues++
			messages += q.st.msgs.live
		}
		q.mu.Unlock()
	}
	return queues, messages
}
