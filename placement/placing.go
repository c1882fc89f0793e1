package placement

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"

	"github.com/cistern-mq/cistern/drivers"
	"github.com/cistern-mq/cistern/index"
)

// Where a queue lives.
//
// A queue on the control pool has no placement record: the control pool's
// catalog entry says that it exists and where. Only a queue placed on, or
// migrated to, another pool has one, placement/<ref key> -> {"pool"},
// written before the queue is made there and deleted after the queue is.
// So the router costs nothing in the store for a queue of the control
// pool beyond what its engine reads.
//
// The spread marker (spreadKey, {"elsewhere": bool}) says whether records
// may exist: it is written at the first start, and turned to true, once and
// for good, before the first record that names another pool. A single node
// that finds it false reads no record at all; one that finds it true reads
// a queue's record once (both answers are cached: this router writes every
// record of its store). A cluster node always reads the record of a queue
// it has not seen, since another node may have placed it since this one
// started. A store placed by an older Cistern, which has a record for every
// queue and no marker, is listed once at start and marked true.
const spreadKey = "placement-records"

// placeStripes is how many locks serialize the placing of new queues: the
// placing of one queue and its creation are one step for this router, so
// that two requests that create it at once agree on its pool even when
// the ring changes in between.
const placeStripes = 64

// placementKey is "placement/<ref key>", the queue named as in the
// engine's catalog.
func placementKey(ref index.QueueRef) string { return placementPrefix + index.RefKey(ref) }

// loadSpread reads the spread marker at start, and writes it when there is
// none: true if the store holds a placement record.
func (r *Router) loadSpread(ctx context.Context) error {
	m, err := getRecord(ctx, r.control, spreadKey, decodeSpread)
	if err == nil {
		r.spread.Store(*m.Elsewhere)
		return nil
	}
	if !errors.Is(err, drivers.ErrNotFound) {
		return err
	}
	page, err := r.control.List(ctx, controlContainer, &drivers.ListOptions{Prefix: placementPrefix, Limit: 1})
	if err != nil {
		return err
	}
	if len(page.Objects) > 0 {
		return r.markSpread(ctx)
	}
	// Create-only: a node of a cluster may have marked it true meanwhile.
	data, _ := json.Marshal(spreadMarker{Elsewhere: new(false)})
	createOnly := r.control.Capabilities().CreateOnly != drivers.CreateOnlyNone
	err = r.control.Put(ctx, controlContainer, spreadKey, data, &drivers.PutOptions{CreateOnly: createOnly})
	if errors.Is(err, drivers.ErrPreconditionFailed) {
		return r.loadSpread(ctx)
	}
	return err
}

// markSpread marks the store as holding placement records, if it is not
// known to be.
func (r *Router) markSpread(ctx context.Context) error {
	if r.spread.Load() {
		return nil
	}
	r.spreadMu.Lock()
	defer r.spreadMu.Unlock()
	if r.spread.Load() {
		return nil
	}
	if err := putJSON(ctx, r.control, spreadKey, spreadMarker{Elsewhere: new(true)}); err != nil {
		return err
	}
	r.spread.Store(true)
	return nil
}

// putRecord writes a queue's placement record, after the spread marker
// when it names another pool than the control pool.
func (r *Router) putRecord(ctx context.Context, ref index.QueueRef, pool string, createOnly bool) error {
	if pool != r.controlPool {
		if err := r.markSpread(ctx); err != nil {
			return err
		}
	}
	data, _ := json.Marshal(placementEntry{Pool: pool})
	createOnly = createOnly && r.control.Capabilities().CreateOnly != drivers.CreateOnlyNone
	return r.control.Put(ctx, controlContainer, placementKey(ref), data, &drivers.PutOptions{CreateOnly: createOnly})
}

// deleteRecord deletes a queue's placement record, if records may exist.
func (r *Router) deleteRecord(ctx context.Context, ref index.QueueRef) error {
	if !r.readsRecords() {
		return nil
	}
	err := r.control.Delete(ctx, controlContainer, placementKey(ref))
	if errors.Is(err, drivers.ErrNotFound) {
		return nil
	}
	return err
}

// readsRecords says whether a queue not in the cache needs its record read.
func (r *Router) readsRecords() bool { return r.opts.Cluster || r.spread.Load() }

// lookup says where a queue lives: the pool its record names, or the
// control pool when it has none. settled is true when that is known for
// sure (a record names the pool, or the queue was found or made on the
// control pool by this router); a queue that is not settled may not exist.
// The cache holds a pool for a settled queue, "" for one without a record.
func (r *Router) lookup(ctx context.Context, ref index.QueueRef) (pool string, settled bool, err error) {
	if p, ok := r.cache.Get(ref); ok {
		if p == "" {
			return r.controlPool, false, nil
		}
		return p, true, nil
	}
	if !r.readsRecords() {
		return r.controlPool, false, nil
	}
	ent, err := r.readRecord(ctx, ref)
	if err != nil {
		return "", false, err
	}
	if ent == "" {
		// Not over a placement made meanwhile.
		r.cache.ContainsOrAdd(ref, "")
		return r.controlPool, false, nil
	}
	r.cache.Add(ref, ent)
	return ent, true, nil
}

// readRecord reads a queue's placement record from the store: the pool it
// names, or "" when there is none.
func (r *Router) readRecord(ctx context.Context, ref index.QueueRef) (string, error) {
	ent, err := getRecord(ctx, r.control, placementKey(ref), decodePlacement)
	if errors.Is(err, drivers.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return ent.Pool, nil
}

// ringPool is where the ring puts a new queue of the given flavor.
func (r *Router) ringPool(ref index.QueueRef, flavor string) (string, error) {
	id, err := r.ring.Load().LookupIn(flavor, ref.Project, ref.Name)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrNoPool, err)
	}
	return string(id), nil
}

// place decides the pool of a queue that is not settled, for a request
// that makes it if it does not exist: the control pool if the queue is
// there, else where the ring puts it; a pool other than the control pool
// is recorded first, create-only so that two routers agree. Callers hold
// the queue's placing stripe.
func (r *Router) place(ctx context.Context, ref index.QueueRef, flavor string) (string, error) {
	control, err := r.engine(r.controlPool)
	if err != nil {
		return "", err
	}
	if _, exists, err := control.Queue(ctx, ref); err != nil || exists {
		return r.controlPool, err
	}
	if flavor != "" {
		r.mu.RLock()
		_, ok := r.flavors[flavor]
		r.mu.RUnlock()
		if !ok {
			return "", fmt.Errorf("%w: %q", ErrFlavorNotFound, flavor)
		}
	}
	p, err := r.ringPool(ref, flavor)
	if err != nil && flavor != "" {
		// The flavor exists but its group is empty (or all weight 0):
		// trying again will not help until an operator acts.
		return "", fmt.Errorf("%w: %q: %v", ErrFlavorEmpty, flavor, err)
	}
	if err != nil || p == r.controlPool {
		return p, err
	}
	err = r.putRecord(ctx, ref, p, true)
	if errors.Is(err, drivers.ErrPreconditionFailed) {
		r.cache.Remove(ref)
		p, _, err := r.lookup(ctx, ref)
		return p, err
	}
	if err != nil {
		return "", err
	}
	r.cache.Add(ref, p)
	return p, nil
}

// engine returns the engine of a pool.
func (r *Router) engine(name string) (*index.Engine, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	p, ok := r.pools[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q (the queue's recorded pool is not configured)", drivers.ErrUnavailable, name)
	}
	return p.engine, nil
}

// route runs f on the engine of the queue's pool. With create, a queue
// that is not settled is placed (in the group of flavor) and f, which
// makes it, runs under its placing stripe; without, a queue without a
// record is looked for on the control pool, which answers as for a queue
// that does not exist. A queue that moved while f waited is followed to
// its new pool.
func (r *Router) route(ctx context.Context, ref index.QueueRef, create bool, flavor string, f func(e *index.Engine) error) error {
	for attempt := 0; ; attempt++ {
		name, settled, err := r.lookup(ctx, ref)
		if err != nil {
			return err
		}
		if create && !settled {
			err = r.placeAndRun(ctx, ref, flavor, f)
		} else {
			var e *index.Engine
			if e, err = r.engine(name); err == nil {
				err = f(e)
			}
		}
		if errors.Is(err, index.ErrMoved) && attempt < 3 {
			r.cache.Remove(ref)
			continue
		}
		return err
	}
}

// placeAndRun places a queue that was not settled and runs f, which makes
// it, on its pool, under the queue's placing stripe.
func (r *Router) placeAndRun(ctx context.Context, ref index.QueueRef, flavor string, f func(e *index.Engine) error) error {
	mu := &r.placing[maphash.Comparable(r.stripeSeed, ref)%placeStripes]
	mu.Lock()
	defer mu.Unlock()
	name, settled, err := r.lookup(ctx, ref)
	if err == nil && !settled {
		name, err = r.place(ctx, ref, flavor)
	}
	if err != nil {
		return err
	}
	e, err := r.engine(name)
	if err != nil {
		return err
	}
	if err := f(e); err != nil {
		return err
	}
	if name == r.controlPool {
		r.cache.Add(ref, name)
	}
	return nil
}
