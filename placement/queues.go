package placement

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"

	"github.com/cistern-mq/cistern/index"
)

// The queue methods of index.Engine, each run on the queue's pool.

// CreateQueue places a new queue (by the ring, in the group of its
// _flavor) and creates it there.
func (r *Router) CreateQueue(ctx context.Context, ref index.QueueRef, meta json.RawMessage) (created bool, err error) {
	err = r.route(ctx, ref, true, flavorOf(meta), func(e *index.Engine) error {
		created, err = e.CreateQueue(ctx, ref, meta)
		return err
	})
	return created, err
}

// Queue implements the engine method on the queue's pool.
func (r *Router) Queue(ctx context.Context, ref index.QueueRef) (info index.QueueInfo, exists bool, err error) {
	err = r.route(ctx, ref, false, "", func(e *index.Engine) error {
		info, exists, err = e.Queue(ctx, ref)
		return err
	})
	return info, exists, err
}

// SetMetadata implements the engine method on the queue's pool. A changed
// _flavor does not move the queue by itself: a migration does
// (docs/pools.md).
func (r *Router) SetMetadata(ctx context.Context, ref index.QueueRef, meta json.RawMessage) error {
	return r.route(ctx, ref, false, "", func(e *index.Engine) error { return e.SetMetadata(ctx, ref, meta) })
}

// DeleteQueue deletes the queue on its pool, then its placement.
func (r *Router) DeleteQueue(ctx context.Context, ref index.QueueRef) error {
	err := r.route(ctx, ref, false, "", func(e *index.Engine) error { return e.DeleteQueue(ctx, ref) })
	if err != nil {
		return err
	}
	r.cache.Remove(ref)
	if err := r.deleteRecord(ctx, ref); err != nil {
		return err
	}
	// A queue of this name made again is new: no engine sends it on to
	// where an earlier one was migrated.
	for _, e := range r.engines() {
		e.ClearMoved(ref)
	}
	return nil
}

// ListQueues merges the project's queues of every pool, by name. A queue
// being migrated is in two pools' catalogs for a moment; it is listed once.
func (r *Router) ListQueues(ctx context.Context, project, marker string, limit int, detailed bool) ([]index.QueueInfo, error) {
	var all []index.QueueInfo
	for _, e := range r.engines() {
		qs, err := e.ListQueues(ctx, project, marker, limit, detailed)
		if err != nil {
			return nil, err
		}
		all = append(all, qs...)
	}
	slices.SortStableFunc(all, func(a, b index.QueueInfo) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	all = slices.CompactFunc(all, func(a, b index.QueueInfo) bool { return a.Name == b.Name })
	if len(all) > limit {
		all = all[:limit]
	}
	return all, nil
}

// Stats implements the engine method on the queue's pool.
func (r *Router) Stats(ctx context.Context, ref index.QueueRef) (s index.Stats, err error) {
	err = r.route(ctx, ref, false, "", func(e *index.Engine) error {
		s, err = e.Stats(ctx, ref)
		return err
	})
	return s, err
}

// Purge implements the engine method on the queue's pool.
func (r *Router) Purge(ctx context.Context, ref index.QueueRef) error {
	return r.route(ctx, ref, false, "", func(e *index.Engine) error { return e.Purge(ctx, ref) })
}

// Post places the queue if it is new, then posts on its pool.
func (r *Router) Post(ctx context.Context, ref index.QueueRef, clientID string, msgs []index.NewMessage) (ids []string, err error) {
	err = r.route(ctx, ref, true, "", func(e *index.Engine) error {
		ids, err = e.Post(ctx, ref, clientID, msgs)
		return err
	})
	return ids, err
}

// PostMoved posts a message moving to a dead-letter queue on the pool
// that queue lives on (placing it if it is new): every engine's moves come
// here (index.DeadLetterPoster), so a dead-letter queue is one queue
// whichever pool its sources are on.
func (r *Router) PostMoved(ctx context.Context, ref index.QueueRef, clientID string, msg index.NewMessage, origin string) (id string, err error) {
	err = r.route(ctx, ref, true, "", func(e *index.Engine) error {
		id, err = e.PostMoved(ctx, ref, clientID, msg, origin)
		return err
	})
	return id, err
}

// List implements the engine method on the queue's pool.
func (r *Router) List(ctx context.Context, ref index.QueueRef, o index.ListOptions) (m []index.Message, err error) {
	err = r.route(ctx, ref, false, "", func(e *index.Engine) error {
		m, err = e.List(ctx, ref, o)
		return err
	})
	return m, err
}

// GetMessages implements the engine method on the queue's pool.
func (r *Router) GetMessages(ctx context.Context, ref index.QueueRef, ids []string) (m []index.Message, err error) {
	err = r.route(ctx, ref, false, "", func(e *index.Engine) error {
		m, err = e.GetMessages(ctx, ref, ids)
		return err
	})
	return m, err
}

// DeleteMessage implements the engine method on the queue's pool.
func (r *Router) DeleteMessage(ctx context.Context, ref index.QueueRef, id, claimID string) error {
	return r.route(ctx, ref, false, "", func(e *index.Engine) error { return e.DeleteMessage(ctx, ref, id, claimID) })
}

// DeleteMessages implements the engine method on the queue's pool.
func (r *Router) DeleteMessages(ctx context.Context, ref index.QueueRef, ids []string) error {
	return r.route(ctx, ref, false, "", func(e *index.Engine) error { return e.DeleteMessages(ctx, ref, ids) })
}

// Pop implements the engine method on the queue's pool.
func (r *Router) Pop(ctx context.Context, ref index.QueueRef, n int) (m []index.Message, err error) {
	err = r.route(ctx, ref, false, "", func(e *index.Engine) error {
		m, err = e.Pop(ctx, ref, n)
		return err
	})
	return m, err
}

// Claim implements the engine method on the queue's pool.
func (r *Router) Claim(ctx context.Context, ref index.QueueRef, o index.ClaimOptions) (c *index.Claim, err error) {
	err = r.route(ctx, ref, false, "", func(e *index.Engine) error {
		c, err = e.Claim(ctx, ref, o)
		return err
	})
	return c, err
}

// GetClaim implements the engine method on the queue's pool.
func (r *Router) GetClaim(ctx context.Context, ref index.QueueRef, id string) (c *index.Claim, err error) {
	err = r.route(ctx, ref, false, "", func(e *index.Engine) error {
		c, err = e.GetClaim(ctx, ref, id)
		return err
	})
	return c, err
}

// RenewClaim implements the engine method on the queue's pool.
func (r *Router) RenewClaim(ctx context.Context, ref index.QueueRef, id string, ttl, grace int64) error {
	return r.route(ctx, ref, false, "", func(e *index.Engine) error { return e.RenewClaim(ctx, ref, id, ttl, grace) })
}

// ReleaseClaim implements the engine method on the queue's pool.
func (r *Router) ReleaseClaim(ctx context.Context, ref index.QueueRef, id string) error {
	return r.route(ctx, ref, false, "", func(e *index.Engine) error { return e.ReleaseClaim(ctx, ref, id) })
}

// Loaded counts the queues in memory over every pool.
func (r *Router) Loaded() int {
	n := 0
	for _, e := range r.engines() {
		n += e.Loaded()
	}
	return n
}

// Ping checks every pool's store.
func (r *Router) Ping(ctx context.Context) error {
	for _, e := range r.engines() {
		if err := e.Ping(ctx); err != nil {
			return err
		}
	}
	return nil
}

// PoolPing is one pool's answer to a probe: Err nil when its store
// answered.
type PoolPing struct {
	Pool string
	Err  error
	// Damaged lists the pool's queues found with their objects missing
	// (index.Engine.DamagedQueues).
	Damaged []index.QueueRef
}

// PingPools probes every pool's store at once (one head each), so that a
// hung store delays the answer by ctx's deadline, not by one deadline a
// pool. The result is by pool name.
func (r *Router) PingPools(ctx context.Context) []PoolPing {
	r.mu.RLock()
	out := make([]PoolPing, 0, len(r.pools))
	engines := make([]*index.Engine, 0, len(r.pools))
	for n, p := range r.pools {
		out = append(out, PoolPing{Pool: n})
		engines = append(engines, p.engine)
	}
	r.mu.RUnlock()
	var wg sync.WaitGroup
	for i, e := range engines {
		wg.Go(func() { out[i].Err, out[i].Damaged = e.Ping(ctx), e.DamagedQueues() })
	}
	wg.Wait()
	slices.SortFunc(out, func(a, b PoolPing) int { return strings.Compare(a.Pool, b.Pool) })
	return out
}
