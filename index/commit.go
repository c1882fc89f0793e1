package index

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"

	"github.com/cistern-mq/cistern/drivers"
)

// batch is one group commit: the records of every request that arrived
// while the previous log object was being written.
type batch struct {
	seq       uint64
	w         *logWriter
	maxMsgSeq uint64
	done      chan struct{}
	err       error
	moving    bool         // holds a moving record: start movers once durable
	bodies    []postedBody // bodies posted in this batch, cached once durable
}

// postedBody is a body waiting for its batch to be durable before it goes
// into the body cache.
type postedBody struct {
	seq  uint64
	body []byte
}

// batchFor returns the open batch, starting one if needed. Callers hold mu.
// Each batch's log sequence is fixed when it is opened, so that the index
// can say where a posted body will be before the batch is written.
func (q *queue) batchFor() *batch {
	if o := q.open; o != nil && (o.w.len() >= q.e.opts.MaxBatchBytes || int(o.w.count) >= q.e.opts.MaxBatchRecords) {
		q.pending = append(q.pending, o)
		q.open = nil
	}
	if q.open == nil {
		q.open = &batch{seq: q.nextLog, w: newLogWriter(), done: make(chan struct{})}
		q.nextLog++
	}
	return q.open
}

// commit hands the caller's records to the group commit and waits until
// the log object holding them is in the store. Callers hold mu; commit
// releases it while it waits and returns with it held.
func (q *queue) commit(ctx context.Context, b *batch) error {
	q.startFlush()
	q.mu.Unlock()
	defer q.mu.Lock()
	select {
	case <-b.done:
		return b.err
	case <-ctx.Done():
		// The records still go out; the caller just stops waiting.
		return ctx.Err()
	}
}

// startFlush makes sure a flusher is running. Callers hold mu.
func (q *queue) startFlush() {
	if q.flushing || (q.open == nil && len(q.pending) == 0 && !q.snapDue) {
		return
	}
	q.flushing = true
	q.e.wg.Go(q.flushLoop)
}

// flushLoop writes batches one after another until none is left: while one
// log object is being written, the next batch fills up.
func (q *queue) flushLoop() {
	ctx := context.Background()
	// returning: this flusher's last batch was in the journal's last
	// round, and the journal's writer waits for it to come back with the
	// next batch or to say it has none (journal.returning).
	returning := false
	back := func() {
		if returning {
			q.e.journal.returned()
			returning = false
		}
	}
	defer back()
	for {
		q.mu.Lock()
		var b *batch
		if len(q.pending) > 0 {
			b = q.pending[0]
			q.pending = q.pending[1:]
		} else if q.open != nil {
			b = q.open
			q.open = nil
		}
		q.inflight = b
		if b == nil && !q.snapDue {
			q.flushing = false
			q.mu.Unlock()
			return
		}
		var snap []byte
		var snapSeq uint64
		var snapLive map[uint64]int
		var fold *foldPlan
		if b != nil {
			q.logsSinceSnap++
		}
		// With no batch behind b, the index reflects exactly the logs up
		// to b (or lastLog): the moment to take a snapshot, or to fold
		// the queue out of the journal, if one is due.
		if len(q.pending) == 0 && q.open == nil && (q.snapDue || q.logsSinceSnap >= q.foldBatches() || q.foldDue()) {
			if q.e.journal != nil {
				if !q.e.journal.isFenced() {
					fold = q.planFoldLocked(b)
				}
			} else {
				snapSeq = q.lastLog
				if b != nil {
					snapSeq = b.seq
				}
				snap = encodeSnapshot(q.st, snapSeq, q.e.now())
				// What the snapshot holds is durable once it is written;
				// the index may by then hold changes that are not (a
				// delete whose write will fail): collection goes by the
				// snapshot.
				snapLive = maps.Clone(q.st.logLive)
			}
			q.snapDue = false
			q.logsSinceSnap = 0
			q.lastSnapAt = q.e.now()
		}
		container, gen := q.container, q.entry.Gen
		q.mu.Unlock()

		if b != nil {
			var err error
			switch {
			case q.e.journal != nil:
				err = q.e.journal.commit(q.ref, gen, b.seq, b.w.finish(), returning)
				returning = err == nil
			default:
				err = q.writeLog(ctx, container, b)
				if err == nil && q.e.fence != nil {
					// Cluster mode: durable means committed (fence.go).
					err = q.commitHead(ctx, func(h head) head { h.Log = b.seq; return h })
				}
			}
			q.mu.Lock()
			if err != nil {
				q.failLocked(err, b)
				q.mu.Unlock()
				return
			}
			q.lastLog = b.seq
			q.inflight = nil
			for _, pb := range b.bodies {
				q.e.bodies.add(bodyKey{container, pb.seq}, pb.body)
			}
			b.bodies = nil
			if b.maxMsgSeq > q.durableSeq {
				q.durableSeq = b.maxMsgSeq
			}
			if b.moving {
				q.startMovers()
			}
			q.mu.Unlock()
			close(b.done)
		}
		if fold != nil {
			back() // the fold writes to the store first
			if !q.writeFold(ctx, container, fold) {
				return
			}
		}
		if snap != nil {
			q.writeSnapshot(ctx, container, snapSeq, snap, snapLive)
		}
	}
}

// writeLog puts one log object, create-only where the store can refuse an
// overwrite. A refusal means another writer has this sequence number: the
// node is fenced off the queue, unless the object there is our own (an
// earlier try that landed although its answer was lost).
func (q *queue) writeLog(ctx context.Context, container string, b *batch) error {
	e := q.e
	data := b.w.finish()
	opts := &drivers.PutOptions{CreateOnly: e.createOnly}
	var err error
	for attempt := 0; attempt <= e.opts.WriteRetries; attempt++ {
		err = e.store.Put(ctx, container, logKey(b.seq), data, opts)
		if err == nil {
			return nil
		}
		if errors.Is(err, drivers.ErrNotFound) {
			return q.damaged(err)
		}
		if errors.Is(err, drivers.ErrPreconditionFailed) {
			have, gerr := e.store.Get(ctx, container, logKey(b.seq), nil)
			if gerr == nil && bytes.Equal(have, data) {
				return nil
			}
			e.log.Error().Str("queue", q.ref.String()).Uint64("log", b.seq).
				Msg("log sequence already written by another writer: fenced off this queue, reloading")
			return fmt.Errorf("%w: %s log %d", ErrFenced, q.ref, b.seq)
		}
		if !errors.Is(err, drivers.ErrUnavailable) {
			break
		}
		e.log.Warn().Err(err).Str("queue", q.ref.String()).Uint64("log", b.seq).Int("attempt", attempt+1).Msg("log write failed")
	}
	return err
}

// failLocked fails b and every batch behind it, and marks the queue stale
// so that the engine drops it from memory: the index holds changes the
// store does not, so the next request reloads the truth from the store.
// The message sequence numbers handed out to the failed batches are burned:
// the reloaded queue starts after them, so that an id a failed post may
// have shown (or a log that landed although its write reported failure)
// can never name a message accepted later.
func (q *queue) failLocked(err error, b *batch) {
	for _, o := range append(append([]*batch{b}, q.pending...), q.open) {
		if o != nil {
			o.err = err
			close(o.done)
		}
	}
	q.pending, q.open, q.inflight = nil, nil, nil
	q.flushing = false
	q.leave(phaseStale) // the engine drops it; see Engine.release
	q.e.burned.raise(q.ref, q.st.nextSeq)
}
