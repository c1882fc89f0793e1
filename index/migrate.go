package index

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cistern-mq/cistern/drivers"
)

// What a migration between pools needs from the engine: where a queue's
// objects are, a way to copy them (CopyQueue, CopyLogs: the keys are this
// package's business), a way to hold the queue still while the last of
// them are copied, and a way to hand it over. The caller (package
// placement) runs the steps: log and snapshot objects are immutable, so
// copying them is idempotent and a migration can be resumed at any step.

// Location says where a queue's objects are in the engine's store.
type Location struct {
	Container string // every log and snapshot object of the queue
	LastLog   uint64 // highest log sequence written, when frozen
	// Entry is the queue's catalog entry, to adopt in the target.
	Entry json.RawMessage
}

// Locate returns where the queue's objects are; exists is false for a
// queue that does not exist here.
func (e *Engine) Locate(ctx context.Context, ref QueueRef) (loc Location, exists bool, err error) {
	err = e.withQueue(ctx, ref, func(q *queue) error {
		if !q.exists {
			return nil
		}
		exists = true
		// A migration copies the container: a bare queue gets one.
		if err := q.ensureContainerLocked(ctx); err != nil {
			return err
		}
		loc, err = q.location()
		return err
	})
	return loc, exists, err
}

func (q *queue) location() (Location, error) {
	entry, err := json.Marshal(q.entry)
	// A fold takes a number of its own for its snapshot and body object
	// (fold.go): the highest number used, not the last log.
	return Location{Container: q.container, LastLog: max(q.lastLog, q.nextLog-1), Entry: entry}, err
}

// Frozen is a queue held still for a migration: requests wait until
// Commit or Abort.
type Frozen struct {
	e   *Engine
	q   *queue
	Loc Location
}

// Freeze stops new changes to the queue, waits until every change already
// made is in the store, and returns where its objects are. The caller must
// end it with Commit or Abort. ErrQueueNotFound if the queue does not exist.
func (e *Engine) Freeze(ctx context.Context, ref QueueRef) (*Frozen, error) {
	q, err := e.acquire(ctx, ref)
	if err != nil {
		return nil, err
	}
	q.mu.Lock()
	if !q.exists || !q.serving() || q.frozen != nil {
		busy := q.frozen != nil
		q.mu.Unlock()
		e.release(q)
		if busy {
			return nil, errors.New("index: queue is already frozen")
		}
		return nil, ErrQueueNotFound
	}
	q.frozen = make(chan struct{})
	// Requests already past the freeze have their records in batches;
	// wait until those are written.
	var waitFor []*batch
	if q.inflight != nil {
		waitFor = append(waitFor, q.inflight)
	}
	waitFor = append(waitFor, q.pending...)
	if q.open != nil {
		waitFor = append(waitFor, q.open)
		q.startFlush()
	}
	q.mu.Unlock()
	for _, b := range waitFor {
		select {
		case <-b.done:
		case <-ctx.Done():
			f := &Frozen{e: e, q: q}
			f.Abort()
			return nil, ctx.Err()
		}
		if b.err != nil {
			f := &Frozen{e: e, q: q}
			f.Abort()
			return nil, b.err
		}
	}
	if e.journal != nil {
		if err := q.foldNow(ctx); err != nil {
			f := &Frozen{e: e, q: q}
			f.Abort()
			return nil, err
		}
	}
	q.mu.Lock()
	err = q.ensureContainerLocked(ctx)
	var loc Location
	if err == nil {
		loc, err = q.location()
	}
	q.mu.Unlock()
	if err != nil {
		f := &Frozen{e: e, q: q}
		f.Abort()
		return nil, err
	}
	return &Frozen{e: e, q: q, Loc: loc}, nil
}

// Commit hands the queue over: it is gone from this engine (requests that
// waited get ErrMoved and go to the queue's new pool), and its catalog
// entry here is deleted and its objects removed in the background. Call it
// only once the target holds every object and has adopted the queue.
func (f *Frozen) Commit(ctx context.Context) error {
	e, q := f.e, f.q
	if err := e.putTrash(ctx, q.ref, q.entry.Gen); err != nil {
		return err
	}
	if err := e.store.Delete(ctx, controlContainer, catalogKey(q.ref)); err != nil {
		return err
	}
	container := q.container
	e.depths.Remove(q.ref) // its new pool reports it
	if e.journal != nil {
		e.journal.drop(q.ref)
	}
	e.mu.Lock()
	e.moved[q.ref] = true
	e.mu.Unlock()
	q.mu.Lock()
	q.leave(phaseMoved)
	close(q.frozen)
	q.frozen = nil
	q.mu.Unlock()
	e.release(q)
	e.wg.Go(func() { e.removeQueueObjects(context.Background(), container) })
	return nil
}

// Abort lets the queue go on here as if nothing happened.
func (f *Frozen) Abort() {
	q := f.q
	q.mu.Lock()
	if q.frozen != nil {
		close(q.frozen)
		q.frozen = nil
	}
	q.mu.Unlock()
	f.e.release(q)
}

// Adopt makes a queue whose objects were copied into this engine's store
// exist here, under the catalog entry it had in its old pool.
func (e *Engine) Adopt(ctx context.Context, ref QueueRef, entry json.RawMessage) error {
	ent, err := decodeCatalogEntry(entry)
	if err != nil {
		return fmt.Errorf("index: adopt: %w", err)
	}
	// Which snapshots the copy holds is for the first load to list.
	ent.Snap = nil
	if entry, err = json.Marshal(ent); err != nil {
		return err
	}
	if err := e.store.Put(ctx, controlContainer, catalogKey(ref), entry, nil); err != nil {
		return err
	}
	// A handle that saw no queue here must not outlive the adoption.
	e.absent.Remove(ref)
	e.mu.Lock()
	delete(e.moved, ref)
	if q, ok := e.queues[ref]; ok {
		select {
		case <-q.ready:
			q.mu.Lock()
			if !q.exists && q.serving() {
				q.leave(phaseStale)
			}
			q.mu.Unlock()
		default:
		}
	}
	e.mu.Unlock()
	return nil
}

// ClearMoved forgets that a queue was migrated away: the router calls it
// when it places the queue here anew (after it was deleted elsewhere).
func (e *Engine) ClearMoved(ref QueueRef) {
	e.mu.Lock()
	delete(e.moved, ref)
	e.mu.Unlock()
}

// Store is the store the engine keeps its queues in.
func (e *Engine) Store() drivers.Store { return e.store }

// AllQueues lists every queue of every project, in catalog order, after
// marker (an opaque string from an earlier call; "" to start). next is ""
// at the end.
func (e *Engine) AllQueues(ctx context.Context, marker string, limit int) (refs []QueueRef, next string, err error) {
	p, err := e.store.List(ctx, controlContainer, &drivers.ListOptions{Prefix: catalogPrefix, Marker: marker, Limit: limit})
	if err != nil {
		return nil, "", err
	}
	for _, o := range p.Objects {
		if ref, ok := ParseRefKey(o.Key[len(catalogPrefix):]); ok {
			refs = append(refs, ref)
		}
	}
	return refs, p.Next, nil
}

// HasQueues reports whether any queue lives in this engine's store.
func (e *Engine) HasQueues(ctx context.Context) (bool, error) {
	p, err := e.store.List(ctx, controlContainer, &drivers.ListOptions{Prefix: catalogPrefix, Limit: 1})
	if err != nil {
		return false, err
	}
	return len(p.Objects) > 0 || p.Next != "", nil
}

// Ping checks that the store answers, at the cost of one small request
// whatever the store holds: a head of a key that is never written (a
// listing would grow with the catalog).
func (e *Engine) Ping(ctx context.Context) error {
	_, err := e.store.Head(ctx, controlContainer, pingKey)
	if errors.Is(err, drivers.ErrNotFound) {
		return nil
	}
	return err
}

// pingKey is the key Ping heads; nothing is stored under it.
const pingKey = "ping"

// CopyQueue copies every object of the queue whose objects are in
// container (Location.Container) from src to dst, making the container in
// dst, and returns the highest log sequence it copied. It finds the objects
// by listing: copy the logs written since with CopyLogs.
func CopyQueue(ctx context.Context, src, dst drivers.Store, container string) (lastLog uint64, err error) {
	if err := dst.CreateContainer(ctx, container); err != nil {
		return 0, err
	}
	marker := ""
	for {
		p, err := src.List(ctx, container, &drivers.ListOptions{Marker: marker})
		if err != nil {
			return 0, err
		}
		for _, o := range p.Objects {
			if err := copyObject(ctx, src, dst, container, o.Key); err != nil {
				return 0, err
			}
			for _, prefix := range numberedPrefixes {
				if seq, ok := parseSeqKey(o.Key, prefix); ok && seq > lastLog {
					lastLog = seq
				}
			}
		}
		if p.Next == "" {
			return lastLog, nil
		}
		marker = p.Next
	}
}

// numberedPrefixes are the kinds of a queue's objects named by a log
// number: logs, snapshots and the body objects of folds.
var numberedPrefixes = []string{logPrefix, snapPrefix, bodyPrefix}

// CopyLogs copies the objects numbered from through to of the queue in
// container (logs, and the snapshots and body objects of folds) from src
// to dst, by their numbers: a listing could miss the newest.
func CopyLogs(ctx context.Context, src, dst drivers.Store, container string, from, to uint64) error {
	for seq := from; seq <= to; seq++ {
		for _, key := range []string{logKey(seq), snapKey(seq), bodyObjectKey(seq)} {
			if err := copyObject(ctx, src, dst, container, key); err != nil {
				return err
			}
		}
		if seq == to { // to may be the largest sequence there is
			break
		}
	}
	return nil
}

// copyObject copies one object; one collected since it was listed is
// skipped.
func copyObject(ctx context.Context, src, dst drivers.Store, container, key string) error {
	data, err := src.Get(ctx, container, key, nil)
	if errors.Is(err, drivers.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return dst.Put(ctx, container, key, data, nil)
}
