package placement

import (
	"context"
	"errors"

	"github.com/cistern-mq/cistern/index"
)

// Location is where a queue lives, and where the ring would put it now: a
// queue whose RingPool differs from its Pool is what a migration of every
// misplaced queue would move.
type Location struct {
	Project string `json:"project"`
	Queue   string `json:"queue"`
	Pool    string `json:"pool"`
	Flavor  string `json:"flavor,omitempty"`
	// RingPool is "" when the queue's group has no pool now (it has
	// nowhere to go, so it is not misplaced).
	RingPool  string `json:"ring_pool"`
	Misplaced bool   `json:"misplaced"`
}

// Locate says where a queue lives; exists is false when its pool's
// catalog does not hold it.
func (r *Router) Locate(ctx context.Context, ref index.QueueRef) (loc Location, exists bool, err error) {
	info, exists, err := r.Queue(ctx, ref)
	if err != nil || !exists {
		return Location{}, false, err
	}
	// After Queue, which follows a move that finished meanwhile.
	pool, _, err := r.lookup(ctx, ref)
	if err != nil {
		return Location{}, false, err
	}
	loc = Location{Project: ref.Project, Queue: ref.Name, Pool: pool, Flavor: flavorOf(info.Metadata)}
	want, err := r.ringPool(ref, loc.Flavor)
	switch {
	case errors.Is(err, ErrNoPool):
	case err != nil:
		return Location{}, false, err
	default:
		loc.RingPool, loc.Misplaced = want, want != pool
	}
	return loc, true, nil
}
