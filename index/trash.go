package index

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"

	"github.com/cistern-mq/cistern/drivers"
)

// A deleted queue, or one migrated away, leaves its container to remove:
// trash/<gen> records it (naming the queue) before its catalog entry goes,
// and the container is emptied in the background, then the entry deleted.
// emptyTrash finishes at start what a crash interrupted.
//
// A queue migrated away and back comes back under the same generation,
// into the container its first move trashed: FinishRemoval, which the
// migration calls before copying, ends that removal first, and a removal
// runs only while its trash entry is there, one at a time per generation
// (trashStripes locks).

const trashStripes = 16

// trashLock is the lock of one generation's removal.
func (e *Engine) trashLock(gen string) *sync.Mutex {
	return &e.trashMu[maphash.String(e.trashSeed, gen)%trashStripes]
}

// FinishRemoval removes what is left of a trashed container before a
// migration copies a queue into it again (the queue left this pool under
// the same generation), and waits for a removal of it under way.
func (e *Engine) FinishRemoval(ctx context.Context, container string) error {
	gen := container[len(containerPrefix):]
	mu := e.trashLock(gen)
	mu.Lock()
	defer mu.Unlock()
	_, err := e.store.Get(ctx, controlContainer, trashPrefix+gen, nil)
	if errors.Is(err, drivers.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := e.removeObjectsLocked(ctx, container); err != nil {
		return fmt.Errorf("index: %s was trashed here and is not removed yet: %w", container, err)
	}
	return nil
}

// removeQueueObjects empties and deletes a deleted queue's container, then
// its trash entry, if its trash entry is still there: a removal that ran
// meanwhile (FinishRemoval) is not repeated over a copy migrated back.
func (e *Engine) removeQueueObjects(ctx context.Context, container string) {
	gen := container[len(containerPrefix):]
	mu := e.trashLock(gen)
	mu.Lock()
	defer mu.Unlock()
	if _, err := e.store.Get(ctx, controlContainer, trashPrefix+gen, nil); errors.Is(err, drivers.ErrNotFound) {
		return
	}
	if err := e.removeObjectsLocked(ctx, container); err != nil {
		e.log.Warn().Err(err).Str("container", container).Msg("removing a deleted queue failed; retried at next start")
	}
}

// removeObjectsLocked removes a trashed container and then its entry;
// callers hold the generation's trash lock. What fails is left for the
// next start (emptyTrash).
func (e *Engine) removeObjectsLocked(ctx context.Context, container string) error {
	for {
		p, err := e.store.List(ctx, container, &drivers.ListOptions{Limit: 1000})
		if errors.Is(err, drivers.ErrNotFound) {
			break
		}
		if err != nil {
			return fmt.Errorf("list: %w", err)
		}
		if len(p.Objects) == 0 {
			break
		}
		keys := make([]string, len(p.Objects))
		for i, o := range p.Objects {
			keys[i] = o.Key
		}
		if err := drivers.DeleteMany(ctx, e.store, container, keys); err != nil {
			return fmt.Errorf("delete objects: %w", err)
		}
	}
	if err := e.store.DeleteContainer(ctx, container); err != nil && !errors.Is(err, drivers.ErrNotFound) {
		return fmt.Errorf("delete container: %w", err)
	}
	gen := container[len(containerPrefix):]
	if err := e.store.Delete(ctx, controlContainer, trashPrefix+gen); err != nil && !errors.Is(err, drivers.ErrNotFound) {
		return fmt.Errorf("delete trash entry: %w", err)
	}
	return nil
}

// putTrash records that generation gen of ref is to be removed. The entry
// names the queue, so that emptyTrash can tell a delete that did not
// happen (its catalog entry still names gen) from one that did.
func (e *Engine) putTrash(ctx context.Context, ref QueueRef, gen string) error {
	return e.store.Put(ctx, controlContainer, trashPrefix+gen, []byte(RefKey(ref)), nil)
}

// trashStillLive reports whether trash entry gen belongs to a queue whose
// delete failed after the entry was written (its catalog entry still names
// gen): its objects stay, and the entry goes. Entries written before they
// named their queue (empty), or that cannot be checked now, are trusted
// or left for the next start.
func (e *Engine) trashStillLive(ctx context.Context, gen string) bool {
	data, err := e.store.Get(ctx, controlContainer, trashPrefix+gen, nil)
	if err != nil {
		return !errors.Is(err, drivers.ErrNotFound) // unreadable: not now
	}
	ref, ok := ParseRefKey(string(data))
	if !ok {
		return false
	}
	ent, err := e.store.Get(ctx, controlContainer, catalogKey(ref), nil)
	if errors.Is(err, drivers.ErrNotFound) {
		return false
	}
	if err != nil {
		return true // not now
	}
	if c, err := decodeCatalogEntry(ent); err != nil || c.Gen != gen {
		return false
	}
	e.log.Warn().Str("queue", ref.String()).Str("gen", gen).
		Msg("a delete of this queue failed after its trash entry was written: the queue stays")
	_ = e.store.Delete(ctx, controlContainer, trashPrefix+gen)
	return true
}

// emptyTrash finishes the removal of queues deleted before a crash.
func (e *Engine) emptyTrash(ctx context.Context) {
	marker := ""
	for {
		p, err := e.store.List(ctx, controlContainer, &drivers.ListOptions{Prefix: trashPrefix, Marker: marker})
		if err != nil {
			e.log.Warn().Err(err).Msg("listing trash failed")
			return
		}
		for _, o := range p.Objects {
			select {
			case <-e.stop:
				return
			default:
			}
			gen := o.Key[len(trashPrefix):]
			if e.trashStillLive(ctx, gen) {
				continue
			}
			e.removeQueueObjects(ctx, queueContainer(gen))
		}
		if p.Next == "" {
			return
		}
		marker = p.Next
	}
}
