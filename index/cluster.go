package index

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cistern-mq/cistern/drivers"
)

// Cluster mode: what the engine does differently when Options.Fence is set
// (fence.go says why). A queue exists when its head is committed; loading
// it reads the head, then exactly the snapshot and logs the head names,
// and takes the queue over by committing a head that reserves one more log
// number; every batch is acknowledged once a head naming its log is
// committed.

// loadFenced is load in cluster mode.
func (q *queue) loadFenced(ctx context.Context) error {
	e := q.e
	if ep, ok := e.absent.Get(q.ref); ok && ep == q.epoch {
		return nil
	}
	hdata, hok, err := e.fence.Head(ctx, q.ref)
	if err != nil {
		return err
	}
	data, err := e.store.Get(ctx, controlContainer, catalogKey(q.ref), nil)
	missing := errors.Is(err, drivers.ErrNotFound)
	if err != nil && !missing {
		return err
	}
	var ent catalogEntry
	if !missing {
		if ent, err = decodeCatalogEntry(data); err != nil {
			return fmt.Errorf("index: %s: %w", q.ref, err)
		}
	}
	switch {
	case !hok && missing:
		e.absent.Add(q.ref, q.epoch)
		return nil
	case !hok && ent.Cluster:
		// A create whose head was never committed, or a delete that
		// committed its end and stopped there: the queue does not exist.
		q.leftover = ent.Gen
		return nil
	case !hok:
		return q.adopt(ctx, ent)
	}
	h, err := decodeHead(hdata)
	if err != nil {
		return fmt.Errorf("%w: index: %s: %w", drivers.ErrUnavailable, q.ref, err)
	}
	// The head is the truth; the catalog entry is the copy listings
	// read. A create writes it after its head, so it may be missing or
	// old: it is written again from the head.
	want := ent
	want.Gen, want.Cluster = h.Gen, true
	if h.Meta != nil {
		want.Metadata, want.Created = h.Meta, h.Created
	}
	if missing || want.Gen != ent.Gen || !bytes.Equal(compactJSON(want.Metadata), compactJSON(ent.Metadata)) {
		if err := q.putEntry(ctx, want); err != nil {
			e.log.Warn().Err(err).Str("queue", q.ref.String()).Msg("catalog entry not brought up to date with the head")
		}
	}
	if err := q.recover(ctx, want, &h); err != nil {
		return err
	}
	return q.takeOver(ctx, h)
}

// compactJSON is raw without insignificant space (raw itself if it does
// not parse).
func compactJSON(raw json.RawMessage) []byte {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return raw
	}
	return b.Bytes()
}

// adopt takes a queue a single node made (no head yet) into cluster mode:
// its entry is marked first, so that it can never again be read as a
// single node's, then it is recovered as a single node would and its
// first head committed.
func (q *queue) adopt(ctx context.Context, ent catalogEntry) error {
	e := q.e
	if ent.Bare {
		// Made by a single node with the journal: cluster mode writes
		// logs into the container.
		if err := e.store.CreateContainer(ctx, queueContainer(ent.Gen)); err != nil {
			return err
		}
		ent.Bare = false
	}
	ent.Cluster = true
	if err := q.putEntry(ctx, ent); err != nil {
		return err
	}
	if err := q.recover(ctx, ent, nil); err != nil {
		return err
	}
	h := head{Gen: ent.Gen, Snap: q.base, Log: q.lastLog, Created: ent.Created, Meta: emptyObject(ent.Metadata)}
	e.log.Info().Str("queue", q.ref.String()).Msg("queue made by a single node taken into cluster mode")
	return q.takeOver(ctx, h)
}

// takeOver commits h with one more log number reserved and skipped: the
// number a previous owner may still be writing. This node writes from the
// one after, so no two owners ever write the same log object, and the
// reserved one is never read.
func (q *queue) takeOver(ctx context.Context, h head) error {
	e := q.e
	nh := h
	nh.Log = h.Log + 1
	nh.Skip = append(slices.Clone(h.Skip), nh.Log)
	if len(h.Skip) >= skipsBeforeSnapshot {
		// Ownership changed many times with no write in between. A
		// snapshot of the state just loaded, at a number no earlier
		// owner can have used (one past the reserved one), empties the
		// skip list.
		s := h.Log + 2
		if err := e.store.Put(ctx, q.container, snapKey(s), encodeSnapshot(q.st, s, e.now()), nil); err != nil {
			return err
		}
		nh = head{Gen: h.Gen, Snap: s, Log: s}
		q.snaps = append(q.snaps, s)
		q.lastLog = s
	}
	if len(nh.Skip) > maxSkip {
		return fmt.Errorf("%w: %s changed owners %d times without a snapshot", drivers.ErrUnavailable, q.ref, len(nh.Skip))
	}
	if err := e.fence.Commit(ctx, q.ref, q.epoch, encodeHead(nh)); err != nil {
		return err
	}
	q.head = nh
	q.nextLog = nh.Log + 1
	q.startMovers()
	return nil
}

// skipsBeforeSnapshot is how many skipped log numbers a take-over lets the
// head carry before it writes a snapshot first.
const skipsBeforeSnapshot = 64

// commitHead commits change(head) as the queue's head, in order with its
// other commits. Callers may hold mu.
func (q *queue) commitHead(ctx context.Context, change func(head) head) error {
	q.headMu.Lock()
	defer q.headMu.Unlock()
	nh := change(q.head)
	var data []byte
	if nh.Gen != "" {
		data = encodeHead(nh)
	}
	if err := q.e.fence.Commit(ctx, q.ref, q.epoch, data); err != nil {
		return err
	}
	q.head = nh
	return nil
}

// putEntry writes the queue's catalog entry.
func (q *queue) putEntry(ctx context.Context, ent catalogEntry) error {
	data, err := json.Marshal(ent)
	if err != nil {
		return err
	}
	return q.e.store.Put(ctx, controlContainer, catalogKey(q.ref), data, nil)
}

// Release unloads every loaded queue for which match is true, once the
// writes it has under way are durable or failed. In cluster mode the node
// calls it before it gives up the queues' ownership (and after it lost
// them), so that the next owner finds every acknowledged write committed
// and this node keeps no copy that could go stale.
func (e *Engine) Release(ctx context.Context, match func(QueueRef) bool) error {
	for _, ref := range e.depths.Keys() {
		if match(ref) {
			e.depths.Remove(ref)
		}
	}
	e.mu.Lock()
	var qs []*queue
	for ref, q := range e.queues {
		if match(ref) {
			qs = append(qs, q)
		}
	}
	e.mu.Unlock()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for _, q := range qs {
		select {
		case <-q.ready:
		case <-ctx.Done():
			return ctx.Err()
		}
		// Stale first, so that nothing new joins its batches; the
		// requests in them still get their answers once they are durable.
		q.mu.Lock()
		if q.phase == phaseServing {
			q.leave(phaseStale)
		}
		q.mu.Unlock()
		for {
			q.mu.Lock()
			busy := q.flushing || q.open != nil || len(q.pending) > 0
			q.mu.Unlock()
			if !busy {
				break
			}
			select {
			case <-tick.C:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		e.forget(q)
		e.absent.Remove(q.ref)
		e.depths.Remove(q.ref) // the next owner reports it
	}
	return nil
}

// createFenced is createLocked in cluster mode, after the container is
// made: the first head is committed (from then on the queue exists, and a
// stale owner fails here, having written nothing), then what a create or
// delete that did not finish left goes to the trash, and the catalog entry
// is written. Callers hold mu.
func (q *queue) createFenced(ctx context.Context, ent catalogEntry, data []byte) (bool, error) {
	e := q.e
	container := queueContainer(ent.Gen)
	first := head{Gen: ent.Gen, Created: ent.Created, Meta: ent.Metadata}
	if err := q.commitHead(ctx, func(head) head { return first }); err != nil {
		// Not committed, or not known to be (an unreachable coordinator
		// may have applied it): the next request reads the truth anew,
		// and the entry is written then if the head is there.
		q.leave(phaseStale)
		if errors.Is(err, ErrFenced) {
			_ = e.store.DeleteContainer(ctx, container)
		}
		return false, err
	}
	if old := q.leftover; old != "" {
		if err := e.putTrash(ctx, q.ref, old); err == nil {
			e.wg.Go(func() { e.removeQueueObjects(context.Background(), queueContainer(old)) })
		}
		q.leftover = ""
	}
	e.absent.Remove(q.ref)
	if err := e.store.Put(ctx, controlContainer, catalogKey(q.ref), data, nil); err != nil {
		// The queue exists (its head says so); its next load writes
		// the entry. Listings miss it until then.
		e.log.Warn().Err(err).Str("queue", q.ref.String()).Msg("created queue's catalog entry not written")
	}
	q.created(ent)
	return true, nil
}

// setMetadataFenced is SetMetadata in cluster mode: the head first, so that
// only the owner changes metadata, then the catalog entry's copy. Callers
// hold mu.
func (q *queue) setMetadataFenced(ctx context.Context, ent catalogEntry) error {
	if err := q.commitHead(ctx, func(h head) head { h.Meta, h.Created = ent.Metadata, ent.Created; return h }); err != nil {
		return err
	}
	if err := q.putEntry(ctx, ent); err != nil {
		// The head has it: the next load writes the entry again.
		q.e.log.Warn().Err(err).Str("queue", q.ref.String()).Msg("catalog entry's metadata copy not written")
	}
	return nil
}

// deleteFenced is DeleteQueue in cluster mode: the head goes first (from
// then on the queue does not exist), then the trash entry is written and
// the catalog entry removed. The trash entry comes after the commit, so
// that a delete that fails to commit never has a live queue's objects
// removed. Callers hold mu.
func (q *queue) deleteFenced(ctx context.Context, container *string) error {
	e := q.e
	err := q.commitHead(ctx, func(head) head { return head{} })
	// Committed or not, the next request reads the head anew.
	q.leave(phaseStale)
	if err != nil {
		return err
	}
	if err := e.putTrash(ctx, q.ref, q.entry.Gen); err != nil {
		// Committed: the queue is gone; its container stays behind until
		// the name is created again (it is a leftover then).
		e.log.Warn().Err(err).Str("queue", q.ref.String()).Msg("deleted queue's trash entry not written")
		return nil
	}
	*container = q.container
	if err := e.store.Delete(ctx, controlContainer, catalogKey(q.ref)); err != nil && !errors.Is(err, drivers.ErrNotFound) {
		// Committed already: what is left is a leftover entry, which
		// listings show until the next create or delete of the name.
		e.log.Warn().Err(err).Str("queue", q.ref.String()).Msg("deleted queue's catalog entry not removed")
	}
	return nil
}
