package index

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/cistern-mq/cistern/drivers"
)

// A fold turns a queue's journaled batches (journal.go) into objects of
// its own: the bodies of its live messages that are still only in the
// journal go into one body object, body/<k>, and a snapshot as of the
// same moment, snap/<k>, is written and recorded in the catalog entry.
// Then the queue's sections are released. k is a log number the fold
// takes for itself, so no batch ever has it: a load that starts from
// snap/<k> reads the logs after k (there are none in journal mode) and
// then the sections after k.
//
// The fold is planned under the queue's lock at the one moment the index
// is exactly the durable state plus the batch in flight (the same moment
// a snapshot is taken without the journal), and written by the flusher
// after that batch is durable. A message whose body moved is readable from
// memory (queue.folding) until the body object is in the store.

// bodyMagic starts every body object. Bodies follow it back to back; the
// index keeps each one's offset, length and checksum, so the object needs
// no framing of its own and is never decoded whole.
const bodyMagic = "CSTBDY01"

// foldPlan is one fold, planned under the queue's lock.
type foldPlan struct {
	seq   uint64            // k: the body object's and the snapshot's number
	cut   uint64            // the last batch the snapshot holds
	gen   string            // the queue generation folded
	body  []byte            // the body object; nil when no body had to move
	moved map[uint64][]byte // message seq -> body, for the cache once written
	snap  []byte
	live  map[uint64]int // bodies per object the snapshot holds
}

// foldDue reports whether the queue's unfolded bodies weigh enough to
// fold now rather than wait for SnapshotLogs or the interval. Callers hold
// mu.
func (q *queue) foldDue() bool {
	return q.e.journal != nil && q.st.pinnedBytes >= q.e.opts.FoldBytes
}

// foldBatches is how many journaled batches make a fold due, as
// SnapshotLogs log objects make a snapshot due without the journal: the
// same number when SnapshotLogs is set, four times its default (1,024)
// when it is not. A journaled batch is a frame of a shared object, not an
// object of its own: folding every 256 of them cost a quarter of the store
// requests of 64 busy queues (docs/performance.md), while a load reads a
// queue's sections 16 at a time.
func (q *queue) foldBatches() int {
	if q.e.journal != nil {
		return q.e.opts.foldBatches
	}
	return q.e.opts.SnapshotLogs
}

// planFoldLocked plans a fold of the state as of batch b in flight (or of
// the last durable batch when b is nil). Callers hold mu, with no batch
// open or pending.
func (q *queue) planFoldLocked(b *batch) *foldPlan {
	st := q.st
	p := &foldPlan{seq: q.nextLog, cut: q.lastLog, gen: q.entry.Gen}
	q.nextLog++
	if b != nil {
		p.cut = b.seq
	}
	if len(st.pinned) > 0 {
		// Only messages posted since the last fold hold pinned bodies.
		from := slices.Min(slices.Collect(maps.Keys(st.pinned)))
		buf := append(make([]byte, 0, len(bodyMagic)+st.pinnedBytes), bodyMagic...)
		p.moved = make(map[uint64][]byte, len(st.pinned))
		st.msgs.each(from, func(m *msg) bool {
			if m.flags&flagJournal == 0 {
				return true
			}
			body := st.pinned[m.seq]
			m.bodyLog = p.seq
			m.bodyOff = uint32(len(buf))
			m.flags = m.flags&^flagJournal | flagBodyObj
			st.logLive[p.seq]++
			buf = append(buf, body...)
			p.moved[m.seq] = body
			return true
		})
		st.pinned = map[uint64][]byte{}
		st.pinnedBytes = 0
		p.body = buf
		q.folding = p.moved
	}
	p.snap = encodeSnapshot(st, p.seq, q.e.now())
	p.live = maps.Clone(st.logLive)
	return p
}

// writeFold writes a planned fold once the batch it holds is durable:
// the body object, then the snapshot (recorded in the catalog entry),
// then the journal forgets the sections the previous fold held. A body object
// that cannot be written fails the queue, which reloads from its last
// snapshot and its sections; a snapshot that cannot be written is tried
// again by a later fold. It reports false when the queue failed.
func (q *queue) writeFold(ctx context.Context, container string, p *foldPlan) bool {
	e := q.e
	if err := q.ensureContainer(ctx); err != nil {
		// As for a body object that cannot be written.
		q.mu.Lock()
		q.folding = nil
		q.failLocked(err, nil)
		q.mu.Unlock()
		return false
	}
	if p.body != nil {
		err := q.putBodyObject(ctx, container, p)
		q.mu.Lock()
		q.folding = nil
		if err != nil {
			q.failLocked(err, nil)
			q.mu.Unlock()
			return false
		}
		q.mu.Unlock()
		for seq, body := range p.moved {
			e.bodies.add(bodyKey{container, seq}, body)
		}
	}
	if q.writeSnapshot(ctx, container, p.seq, p.snap, p.live) {
		// The sections the previous recorded fold holds are released,
		// not this one's: a load whose recorded snapshot cannot be read
		// falls back to the one before it (queue.recover), as logs after
		// the older kept snapshot are kept without the journal.
		q.mu.Lock()
		upTo := q.foldCut
		q.foldCut = p.cut
		q.mu.Unlock()
		e.journal.release(q.ref, p.gen, upTo)
	}
	return true
}

// putBodyObject writes a fold's body object. The number is one the fold
// took past every durable batch, so an object already there is what a
// failed fold of this queue left (the node's journal fences any other
// writer): nothing refers to it, and it is overwritten.
func (q *queue) putBodyObject(ctx context.Context, container string, p *foldPlan) error {
	e := q.e
	key := bodyObjectKey(p.seq)
	var err error
	for attempt := 0; attempt <= e.opts.WriteRetries; attempt++ {
		err = e.store.Put(ctx, container, key, p.body, nil)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, drivers.ErrNotFound):
			return q.damaged(err)
		case !errors.Is(err, drivers.ErrUnavailable):
			return err
		}
		e.log.Warn().Err(err).Str("queue", q.ref.String()).Uint64("body", p.seq).Int("attempt", attempt+1).Msg("body object write failed")
	}
	return err
}

// foldBatch bounds how many queues one janitor pass loads only to fold them.
const foldBatch = 32

// foldUnloaded loads queues that still have sections in the journal but
// are not in memory (the journal was read back at start, or a queue
// failed) and folds them, so that the journal can be trimmed. A queue
// that no longer exists forgets its sections as it loads.
func (e *Engine) foldUnloaded() {
	var refs []QueueRef
	pending := e.journal.pendingRefs()
	e.mu.Lock()
	for _, ref := range pending {
		if _, loaded := e.queues[ref]; !loaded && !e.closed && len(refs) < foldBatch {
			refs = append(refs, ref)
		}
	}
	e.mu.Unlock()
	for _, ref := range refs {
		e.wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			err := e.withQueue(ctx, ref, func(q *queue) error {
				if q.exists {
					q.snapDue = true
					q.startFlush()
				}
				return nil
			})
			if err != nil && !errors.Is(err, ErrClosed) {
				e.log.Warn().Err(err).Str("queue", ref.String()).Msg("loading a queue to fold it out of the journal failed")
			}
		})
	}
}

// foldNow folds a frozen queue out of the journal (a migration copies its
// container, which must then hold all of it): every batch is durable by
// now, so the fold is of the durable state. The snapshot is written but
// not recorded (a frozen queue's entry does not change); the copy's first
// load finds it by listing.
func (q *queue) foldNow(ctx context.Context) error {
	e := q.e
	for {
		q.mu.Lock()
		if !q.flushing {
			break // with mu held
		}
		q.mu.Unlock()
		// The flusher is finishing a snapshot or fold of its own.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	if !q.serving() {
		q.mu.Unlock()
		return fmt.Errorf("%w: %s failed while folding", drivers.ErrUnavailable, q.ref)
	}
	if e.journal.isFenced() {
		q.mu.Unlock()
		return errJournalFenced
	}
	if len(q.st.pinned) == 0 && !e.journal.has(q.ref) {
		q.mu.Unlock()
		return nil
	}
	if err := q.ensureContainerLocked(ctx); err != nil {
		q.mu.Unlock()
		return err
	}
	q.flushing = true // keeps a flusher out while the fold is written
	p := q.planFoldLocked(nil)
	q.logsSinceSnap = 0
	container := q.container
	q.mu.Unlock()

	var err error
	if p.body != nil {
		err = q.putBodyObject(ctx, container, p)
	}
	if err == nil {
		err = e.store.Put(ctx, container, snapKey(p.seq), p.snap, nil)
	}
	q.mu.Lock()
	q.folding = nil
	if err != nil {
		q.failLocked(err, nil)
		q.mu.Unlock()
		return err
	}
	q.flushing = false
	q.snaps = append(q.snaps, p.seq)
	q.mu.Unlock()
	for seq, body := range p.moved {
		e.bodies.add(bodyKey{container, seq}, body)
	}
	return nil
}

// foldAll folds every queue that has sections in the journal, loading the
// ones that are not in memory, and returns once the folds are under way
// (Close waits for the flushers).
func (e *Engine) foldAll() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, ref := range e.journal.pendingRefs() {
		err := e.withQueue(ctx, ref, func(q *queue) error {
			if q.exists {
				q.snapDue = true
				q.startFlush()
			}
			return nil
		})
		if err != nil {
			e.log.Warn().Err(err).Str("queue", ref.String()).Msg("folding a queue at close failed; the next start reads its journal")
		}
	}
}

// waitFlushers waits until no loaded queue is flushing, or for d.
func (e *Engine) waitFlushers(d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		busy := false
		e.mu.Lock()
		for _, q := range e.queues {
			q.mu.Lock()
			busy = busy || q.flushing
			q.mu.Unlock()
		}
		e.mu.Unlock()
		if !busy {
			return
		}
		<-time.After(5 * time.Millisecond)
	}
}

// ensureContainer makes the container of a bare queue (catalogEntry.Bare)
// before its first fold writes there. The entry in the store says bare
// until the fold's record; the container exists either way.
func (q *queue) ensureContainer(ctx context.Context) error {
	q.mu.Lock()
	bare, container := q.entry.Bare, q.container
	q.mu.Unlock()
	if !bare {
		return nil
	}
	if err := q.makeContainer(ctx, container); err != nil {
		return err
	}
	q.mu.Lock()
	if q.container == container {
		q.entry.Bare = false
	}
	q.mu.Unlock()
	return nil
}

// ensureContainerLocked is ensureContainer for a migration or the fold of
// a frozen queue. Callers hold mu.
func (q *queue) ensureContainerLocked(ctx context.Context) error {
	if !q.entry.Bare {
		return nil
	}
	if err := q.makeContainer(ctx, q.container); err != nil {
		return err
	}
	q.entry.Bare = false
	return nil
}

// makeContainer makes a bare queue's container, trying again as a body
// object write does.
func (q *queue) makeContainer(ctx context.Context, container string) error {
	var err error
	for attempt := 0; attempt <= q.e.opts.WriteRetries; attempt++ {
		if err = q.e.store.CreateContainer(ctx, container); !errors.Is(err, drivers.ErrUnavailable) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("index: %s: make its container: %w", q.ref, err)
	}
	return nil
}
