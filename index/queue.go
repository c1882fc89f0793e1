package index

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
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
	epoch    int64 // the ownership it was loaded under (cluster mode; 0 otherwise)

	mu        sync.Mutex
	exists    bool
	phase     phase         // see phase.go
	frozen    chan struct{} // non-nil while a migration holds the queue; closed to thaw
	entry     catalogEntry
	settings  Settings
	container string
	st        *state

	base       uint64   // the snapshot the last load started from (0: none)
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
	snaps         []uint64                 // snapshots known to exist, ascending
	movers        map[uint64]chan struct{} // moves under way; closed when each ends
	// folding holds the bodies a fold moved out of the journal until its
	// body object is in the store (fold.go); foldCut is the last batch
	// the last recorded fold holds (0: none since the load).
	folding map[uint64][]byte
	foldCut uint64

	// Cluster mode (fence.go, cluster.go): the head last committed, and
	// the generation of a catalog entry no head backs (a create or delete
	// that did not finish), which the next create puts in the trash.
	// headMu orders the queue's commits; it is taken after mu, never
	// before.
	headMu   sync.Mutex
	head     head
	leftover string
}

// load reads the queue's catalog entry and, if the queue exists, rebuilds
// its index: the newest readable snapshot, then every log after it, found
// by reading the next sequence number until one is missing (listings may
// lag; direct reads do not).
func (q *queue) load(ctx context.Context) error {
	e := q.e
	if e.fence != nil {
		return q.loadFenced(ctx)
	}
	if _, ok := e.absent.Get(q.ref); ok {
		return nil
	}
	data, err := e.store.Get(ctx, controlContainer, catalogKey(q.ref), nil)
	if errors.Is(err, drivers.ErrNotFound) {
		e.absent.Add(q.ref, 0)
		if e.journal != nil {
			e.journal.drop(q.ref) // sections of a queue deleted since
		}
		return nil // a queue that does not exist (yet)
	}
	if err != nil {
		return err
	}
	ent, err := decodeCatalogEntry(data)
	if err != nil {
		return fmt.Errorf("index: %s: %w", q.ref, err)
	}
	if ent.Cluster {
		// Its head (which logs count, which to skip) is in the cluster's
		// etcd: read from the store alone it could look empty, or show
		// writes that were never acknowledged. Refuse, loudly.
		e.log.Error().Str("queue", q.ref.String()).
			Msg("queue was written in cluster mode; its state is in etcd: serve this store with -etcd")
		return fmt.Errorf("%w: %s: %w", drivers.ErrUnavailable, q.ref, ErrClusterQueue)
	}
	if (ent.Folded || ent.Bare) && e.journal == nil {
		// Without the journal this engine writes logs after the
		// snapshot: an engine with it must not skip them later. And it
		// writes them into the container.
		if ent.Bare {
			if err := e.store.CreateContainer(ctx, queueContainer(ent.Gen)); err != nil {
				return fmt.Errorf("index: %s: make its container: %w", q.ref, err)
			}
		}
		ent.Folded, ent.Bare = false, false
		data, err := json.Marshal(ent)
		if err == nil {
			err = e.store.Put(ctx, controlContainer, catalogKey(q.ref), data, nil)
		}
		if err != nil {
			return fmt.Errorf("index: %s: clear folded mark: %w", q.ref, err)
		}
	}
	if err := q.recover(ctx, ent, nil); err != nil {
		return err
	}
	// Finish moves to a dead-letter queue that a crash interrupted.
	q.startMovers()
	return nil
}

// recover rebuilds the index from the store. h, in cluster mode, is the
// committed head: recovery starts from its snapshot and reads exactly its
// logs (every one must be there); without it, from the catalog entry's
// snapshot (or a listing, for old entries), reading logs until one is
// missing.
func (q *queue) recover(ctx context.Context, ent catalogEntry, h *head) error {
	e := q.e
	start := time.Now()
	q.entry = ent
	q.settings = parseSettings(ent.Metadata)
	q.container = queueContainer(ent.Gen)
	q.movers = map[uint64]chan struct{}{}
	q.lastSnapAt = e.now()

	var snaps []uint64
	var err error
	switch {
	case h != nil:
		if h.Snap > 0 {
			snaps = []uint64{h.Snap}
		}
	case ent.Snap != nil && *ent.Snap > 0:
		snaps = []uint64{*ent.Snap}
	case ent.Snap == nil:
		if snaps, err = q.listSnapshots(ctx); err != nil {
			return err
		}
	}
	st, from, err := q.readSnapshot(ctx, snaps)
	if err != nil && h != nil {
		// A committed snapshot is never collected while it is the head's.
		return fmt.Errorf("%w: %s: committed snapshot %d: %w", drivers.ErrUnavailable, q.ref, h.Snap, err)
	}
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
	last := from // the last log read
	// A snapshot a fold wrote and recorded has no logs after it: the
	// probe for one is saved (a cold load is the catalog entry and the
	// snapshot).
	// Nor for a bare queue: its container holds no log.
	folded := h == nil && e.journal != nil &&
		(ent.Folded && ent.Snap != nil && *ent.Snap == from && from > 0 || ent.Bare)
	for ; !folded; seq++ {
		if h != nil && (seq > h.Log || h.skipped(seq)) {
			if seq > h.Log {
				break
			}
			continue
		}
		data, err := e.store.Get(ctx, q.container, logKey(seq), nil)
		if errors.Is(err, drivers.ErrNotFound) && h != nil {
			// Committed, so written: a store that lags heals on retry.
			return fmt.Errorf("%w: index: committed log %d of %s is missing", drivers.ErrUnavailable, seq, q.ref)
		}
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
		last = seq
	}
	journaled := 0
	if e.journal != nil && h == nil {
		// Batches committed through the journal and not folded yet.
		if last, journaled, err = e.journal.replay(ctx, q, st, ent.Gen, last); err != nil {
			return err
		}
	}
	if from == 0 && replayed == 0 && !ent.Bare {
		// Nothing read from the container: an empty queue (or one only
		// in the journal), or one whose container vanished (reads of a
		// missing container answer not found, as of a missing key). One
		// listing tells them apart, for queues never snapshotted only (a
		// bare queue has no container yet).
		if _, err := e.store.List(ctx, q.container, &drivers.ListOptions{Limit: 1}); errors.Is(err, drivers.ErrNotFound) {
			return q.damaged(err)
		}
	}
	if next := e.burned.take(q.ref); next > st.nextSeq {
		st.nextSeq = next
	}
	q.st = st
	q.exists = true // only now: a failed recovery leaves no half-made queue
	q.base = from
	q.lastLog = last
	q.nextLog = last + 1
	q.durableSeq = st.nextSeq - 1
	q.snaps = snaps
	q.logsSinceSnap = replayed + journaled
	e.log.Debug().Str("queue", q.ref.String()).Uint64("snapshot", from).Int("logs", replayed).Int("journaled", journaled).
		Int("messages", st.msgs.live).Dur("took", time.Since(start)).Msg("queue recovered")
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
	q.e.damaged.Add(q.ref, struct{}{})
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
