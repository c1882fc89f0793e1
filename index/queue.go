package index

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/cistern-mq/cistern/drivers"
)

// queue is one loaded queue: its catalog entry, its index, and the group
// commit that makes changes to the index durable. Fields below mu are
// guarded by it; refs and lastUsed by the engine's mu.
type queue struct {
	e        *Engine
	ref      QueueRef
	ready    chan struct{} // closed when load is done
	refs     int
	lastUsed int64

	mu        sync.Mutex
	exists    bool
	phase     phase         // see phase.go
	frozen    chan struct{} // non-nil while a migration holds the queue; closed to thaw
	entry     catalogEntry
	settings  Settings
	container string
	st        *state

	lastLog    uint64   // highest log seq written (or found at load)
	nextLog    uint64   // seq the next new batch will be written as
	durableSeq uint64   // highest message seq whose post is durable
	pending    []*batch // full batches waiting for their turn, oldest first
	open       *batch   // the batch new records go into
	inflight   *batch   // the batch being written
	flushing   bool     // a flusher goroutine owns the writes

	snapDue       bool
	logsSinceSnap int
	lastSnapAt    int64
	snaps         []uint64 // snapshots known to exist, ascending
	movers        map[uint64]bool
}

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

// load reads the queue's catalog entry and, if the queue exists, rebuilds
// its index: the newest readable snapshot, then every log after it, found
// by reading the next sequence number until one is missing (listings may
// lag; direct reads do not).
func (q *queue) load(ctx context.Context) error {
	e := q.e
	if e.absent.Contains(q.ref) {
		return nil
	}
	data, err := e.store.Get(ctx, controlContainer, catalogKey(q.ref), nil)
	if errors.Is(err, drivers.ErrNotFound) {
		e.absent.Add(q.ref, struct{}{})
		return nil // a queue that does not exist (yet)
	}
	if err != nil {
		return err
	}
	ent, err := decodeCatalogEntry(data)
	if err != nil {
		return fmt.Errorf("index: %s: %w", q.ref, err)
	}
	return q.recover(ctx, ent)
}

func (q *queue) recover(ctx context.Context, ent catalogEntry) error {
	e := q.e
	start := time.Now()
	q.exists = true
	q.entry = ent
	q.settings = parseSettings(ent.Metadata)
	q.container = queueContainer(ent.Gen)
	q.movers = map[uint64]bool{}
	q.lastSnapAt = e.now()

	var snaps []uint64
	var err error
	switch {
	case ent.Snap != nil && *ent.Snap > 0:
		snaps = []uint64{*ent.Snap}
	case ent.Snap == nil:
		if snaps, err = q.listSnapshots(ctx); err != nil {
			return err
		}
	}
	st, from, err := q.readSnapshot(ctx, snaps)
	if err != nil && ent.Snap != nil && *ent.Snap > 0 {
		// The recorded snapshot is gone or unreadable (it should be
		// neither): the one before it, and every log after that, are
		// kept for this.
		e.log.Warn().Err(err).Str("queue", q.ref.String()).Uint64("snapshot", *ent.Snap).Msg("recorded snapshot not readable; listing")
		if snaps, err = q.listSnapshots(ctx); err == nil {
			st, from, err = q.readSnapshot(ctx, snaps)
		}
		if errors.Is(err, drivers.ErrNotFound) {
			// Replaying from log 1 could miss collected logs: refuse.
			err = fmt.Errorf("%w: %s: its catalog names snapshot %d, and no snapshot can be read", drivers.ErrUnavailable, q.ref, *ent.Snap)
		}
	}
	if errors.Is(err, drivers.ErrNotFound) {
		st, from, err = newState(), 0, nil // never snapshotted
	}
	if err != nil {
		return err
	}
	seq := from + 1
	replayed := 0
	for ; ; seq++ {
		data, err := e.store.Get(ctx, q.container, logKey(seq), nil)
		if errors.Is(err, drivers.ErrNotFound) {
			break
		}
		if err != nil {
			return fmt.Errorf("index: read log %d of %s: %w", seq, q.ref, err)
		}
		recs, err := decodeLog(data)
		if err != nil {
			// A log object is written whole or not at all; one that does
			// not decode was torn on its way or damaged in the store.
			// Refuse to guess; a torn read heals on retry.
			return fmt.Errorf("%w: index: log %d of %s: %w", drivers.ErrUnavailable, seq, q.ref, err)
		}
		for i := range recs {
			st.apply(&recs[i], seq)
		}
		replayed++
	}
	if next := e.burned.take(q.ref); next > st.nextSeq {
		st.nextSeq = next
	}
	q.st = st
	q.lastLog = seq - 1
	q.nextLog = seq
	q.durableSeq = st.nextSeq - 1
	q.snaps = snaps
	q.logsSinceSnap = replayed
	e.log.Debug().Str("queue", q.ref.String()).Uint64("snapshot", from).Int("logs", replayed).
		Int("messages", st.msgs.live).Dur("took", time.Since(start)).Msg("queue recovered")
	// Finish moves to a dead-letter queue that a crash interrupted.
	if len(st.moving) > 0 {
		q.startMovers()
	}
	return nil
}

// listSnapshots lists the queue's snapshots, ascending.
func (q *queue) listSnapshots(ctx context.Context) ([]uint64, error) {
	e := q.e
	var snaps []uint64
	marker := ""
	for {
		p, err := e.store.List(ctx, q.container, &drivers.ListOptions{Prefix: snapPrefix, Marker: marker})
		if errors.Is(err, drivers.ErrNotFound) {
			return nil, q.damaged(err)
		}
		if err != nil {
			return nil, fmt.Errorf("index: list snapshots of %s: %w", q.ref, err)
		}
		for _, o := range p.Objects {
			if s, ok := parseSeqKey(o.Key, snapPrefix); ok {
				snaps = append(snaps, s)
			}
		}
		if p.Next == "" {
			break
		}
		marker = p.Next
	}
	slices.Sort(snaps)
	return snaps, nil
}

// damaged reports that the queue's container is missing from the store,
// loudly: the catalog says it holds data, so it is not made again empty.
func (q *queue) damaged(cause error) error {
	q.e.log.Error().Err(cause).Str("queue", q.ref.String()).Str("container", q.container).
		Msg("queue container missing from the store: restore it, or delete the queue")
	return fmt.Errorf("%w: %s (container %s)", ErrQueueDamaged, q.ref, q.container)
}

// readSnapshot decodes the newest readable snapshot among snaps
// (ascending); with none listed, the state starts empty at log 1.
// ErrNotFound when every one listed is gone, ErrUnavailable when one is
// there but none decodes.
func (q *queue) readSnapshot(ctx context.Context, snaps []uint64) (*state, uint64, error) {
	e := q.e
	if len(snaps) == 0 {
		return newState(), 0, nil
	}
	corrupt := false
	for i := len(snaps) - 1; i >= 0; i-- {
		data, err := e.store.Get(ctx, q.container, snapKey(snaps[i]), nil)
		if errors.Is(err, drivers.ErrNotFound) {
			continue // listed but gone: collected since
		}
		if err != nil {
			return nil, 0, fmt.Errorf("index: read snapshot %d of %s: %w", snaps[i], q.ref, err)
		}
		s, seq, err := decodeSnapshot(data)
		if err != nil {
			e.log.Error().Err(err).Str("queue", q.ref.String()).Uint64("snapshot", snaps[i]).Msg("skipping unreadable snapshot")
			corrupt = true
			continue
		}
		return s, seq, nil
	}
	if corrupt {
		// An older snapshot than an unreadable one may lack logs that
		// were collected: do not guess. A torn read heals on retry.
		return nil, 0, fmt.Errorf("%w: index: no snapshot of %s decodes: %w", drivers.ErrUnavailable, q.ref, errCorrupt)
	}
	return nil, 0, fmt.Errorf("index: no snapshot of %s: %w", q.ref, drivers.ErrNotFound)
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
		if b != nil {
			q.logsSinceSnap++
		}
		// With no batch behind b, the index reflects exactly the logs up
		// to b (or lastLog): the moment to take a snapshot, if one is due.
		if len(q.pending) == 0 && q.open == nil && (q.snapDue || q.logsSinceSnap >= q.e.opts.SnapshotLogs) {
			snapSeq = q.lastLog
			if b != nil {
				snapSeq = b.seq
			}
			snap = encodeSnapshot(q.st, snapSeq, q.e.now())
			// What the snapshot holds is durable once it is written;
			// the index may by then hold changes that are not (a delete
			// whose write will fail): collection goes by the snapshot.
			snapLive = maps.Clone(q.st.logLive)
			q.snapDue = false
			q.logsSinceSnap = 0
			q.lastSnapAt = q.e.now()
		}
		container := q.container
		q.mu.Unlock()

		if b != nil {
			err := q.writeLog(ctx, container, b)
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

func (q *queue) writeSnapshot(ctx context.Context, container string, seq uint64, data []byte, live map[uint64]int) {
	e := q.e
	if err := e.store.Put(ctx, container, snapKey(seq), data, nil); err != nil {
		e.log.Warn().Err(err).Str("queue", q.ref.String()).Uint64("snapshot", seq).Msg("snapshot write failed; will retry later")
		q.mu.Lock()
		q.logsSinceSnap = e.opts.SnapshotLogs / 2 // retry sooner than usual
		q.mu.Unlock()
		return
	}
	q.mu.Lock()
	q.snaps = append(q.snaps, seq)
	recorded := q.recordSnapshotLocked(ctx, seq)
	q.mu.Unlock()
	if recorded {
		q.collect(ctx, container, live)
	}
}

// recordSnapshotLocked writes seq into the queue's catalog entry as its
// newest snapshot, so that the next load reads it without listing. Only a
// recorded snapshot lets garbage collection go ahead: the entry never
// names a snapshot older than the one collection keeps. Callers hold mu,
// which orders this write with SetMetadata's.
func (q *queue) recordSnapshotLocked(ctx context.Context, seq uint64) bool {
	if !q.serving() || !q.exists || q.frozen != nil {
		return false
	}
	ent := q.entry
	ent.Snap = &seq
	data, err := json.Marshal(ent)
	if err == nil {
		err = q.e.store.Put(ctx, controlContainer, catalogKey(q.ref), data, nil)
	}
	if err != nil {
		q.e.log.Warn().Err(err).Str("queue", q.ref.String()).Uint64("snapshot", seq).Msg("recording snapshot in the catalog failed")
		return false
	}
	q.entry = ent
	return true
}

// collect deletes what the two newest snapshots make unnecessary: older
// snapshots, and log objects up to the older of the two that hold no
// message body live in the newest snapshot (live: the logs it counts
// bodies in; no later change can bring a body back to life). Logs after the older snapshot stay, so that a recovery that
// starts from that one (a listing or a catalog read that lags) still finds
// every log it needs. Snapshots go first: while a snapshot is there, every
// log after it is too, so a recovery that finds one can replay from it.
func (q *queue) collect(ctx context.Context, container string, live map[uint64]int) {
	e := q.e
	q.mu.Lock()
	if len(q.snaps) < 2 || !q.serving() {
		q.mu.Unlock()
		return
	}
	keep := q.snaps[len(q.snaps)-2]
	q.snaps = slices.Clone(q.snaps[len(q.snaps)-2:])
	q.mu.Unlock()

	// Listed rather than remembered: a queue loaded through its recorded
	// snapshot never saw the older ones.
	snaps, err := q.listBelow(ctx, container, snapPrefix, keep, func(uint64) bool { return true })
	if err == nil {
		err = drivers.DeleteMany(ctx, e.store, container, snaps)
	}
	var logs []string
	if err == nil {
		logs, err = q.listBelow(ctx, container, logPrefix, keep, func(s uint64) bool { return live[s] == 0 })
	}
	if err == nil {
		err = drivers.DeleteMany(ctx, e.store, container, logs)
	}
	if err != nil {
		e.log.Warn().Err(err).Str("queue", q.ref.String()).Msg("garbage collection failed; the next snapshot tries again")
	}
}

// listBelow lists the keys under prefix whose sequence number is below
// limit and for which garbage (called under q.mu) is true.
func (q *queue) listBelow(ctx context.Context, container, prefix string, limit uint64, garbage func(seq uint64) bool) ([]string, error) {
	var out []string
	marker := ""
	for {
		p, err := q.e.store.List(ctx, container, &drivers.ListOptions{Prefix: prefix, Marker: marker})
		if err != nil {
			return nil, err
		}
		q.mu.Lock()
		for _, o := range p.Objects {
			s, ok := parseSeqKey(o.Key, prefix)
			if !ok || s >= limit {
				p.Next = ""
				break
			}
			if garbage(s) {
				out = append(out, o.Key)
			}
		}
		q.mu.Unlock()
		if p.Next == "" {
			return out, nil
		}
		marker = p.Next
	}
}

// startMovers finishes moves to dead-letter queues recorded in the index.
// Callers hold mu.
func (q *queue) startMovers() {
	for seq := range q.st.moving {
		if q.movers[seq] {
			continue
		}
		q.movers[seq] = true
		q.e.wg.Go(func() { q.move(seq) })
	}
}

// move copies one message to its dead-letter queue, then deletes it here.
// The copy carries its origin, so a copy repeated after a crash between the
// two steps is recognised by the dead-letter queue and not posted twice.
func (q *queue) move(seq uint64) {
	e := q.e
	ctx := context.Background()
	defer func() {
		q.mu.Lock()
		delete(q.movers, seq)
		q.mu.Unlock()
	}()
	q.mu.Lock()
	m := q.st.msgs.find(seq)
	tgt, ok := q.st.moving[seq]
	if m == nil || !ok || !q.serving() {
		q.mu.Unlock()
		return
	}
	loc := q.bodyLoc(m)
	ttl := tgt.ttl
	if ttl <= 0 {
		ttl = (m.expires - e.now()) / 1e9
	}
	client := q.st.clients[m.client]
	origin := q.entry.Gen + "/" + strconv.FormatUint(seq, 10)
	q.mu.Unlock()
	body, err := e.readBody(ctx, loc)
	if err == nil {
		_, err = e.deadLetters().PostMoved(ctx, QueueRef{Project: q.ref.Project, Name: tgt.dlq}, client,
			NewMessage{Body: body, TTL: max(ttl, 1)}, origin)
	}
	if err == nil {
		q.mu.Lock()
		// A frozen queue is being migrated: the moving record travels with
		// its logs, and the queue's new pool finishes the move.
		if m := q.st.msgs.find(seq); m != nil && q.serving() && q.frozen == nil {
			q.st.removeMsg(m)
			b := q.batchFor()
			b.w.delete([]uint64{seq})
			err = q.commit(ctx, b)
		}
		q.mu.Unlock()
	}
	if err != nil {
		e.log.Warn().Err(err).Str("queue", q.ref.String()).Uint64("seq", seq).Str("dlq", tgt.dlq).
			Msg("move to dead-letter queue not finished; it is retried when the queue reloads")
	}
}
