package placement

import (
	"context"
	"errors"
	"fmt"

	"github.com/cistern-mq/cistern/drivers"
	"github.com/cistern-mq/cistern/index"
)

// In cluster mode (Options.Cluster) several nodes serve the same pools, each
// the queues it owns (package cluster). The registry of pools and flavors
// is then read from the configuration file of every node at start, and live
// migration is not run: both change what every node must agree on, and a
// node only learns of them when it starts.

// ErrClusterMode: an operation this package refuses in cluster mode.
var ErrClusterMode = errors.New("not available in cluster mode")

// clusterRefusal fails what cluster mode does not allow.
func (r *Router) clusterRefusal(what string) error {
	if !r.opts.Cluster {
		return nil
	}
	return fmt.Errorf("%w: %s (pools and flavors come from every node's configuration file; restart the nodes one by one to change them)", ErrClusterMode, what)
}

// Release unloads, from every pool's engine, the loaded queues for which
// match is true, once their writes under way are durable, and forgets
// where they live: cluster mode calls it before this node gives up the
// queues and after it lost them, so that nothing it kept can answer for
// them later.
func (r *Router) Release(ctx context.Context, match func(index.QueueRef) bool) error {
	r.mu.RLock()
	engines := make([]*index.Engine, 0, len(r.pools))
	for _, p := range r.pools {
		engines = append(engines, p.engine)
	}
	r.mu.RUnlock()
	var first error
	for _, e := range engines {
		if err := e.Release(ctx, match); err != nil && first == nil {
			first = err
		}
	}
	for _, ref := range r.cache.Keys() {
		if match(ref) {
			r.cache.Remove(ref)
		}
	}
	return first
}

// SetDeadLetters makes every engine's moves to dead-letter queues post
// through p instead of the router: in cluster mode, the dead-letter queue
// may be owned by another node (package cluster's DeadLetters).
func (r *Router) SetDeadLetters(p index.DeadLetterPoster) {
	r.dead.Store(&p)
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, pl := range r.pools {
		pl.engine.SetDeadLetters(p)
	}
}

// deadLetters is where the engines' moves post: what SetDeadLetters set,
// or the router.
func (r *Router) deadLetters() index.DeadLetterPoster {
	if p := r.dead.Load(); p != nil {
		return *p
	}
	return r
}

// clusterKey, in the control container, names the cluster whose etcd holds
// the heads of this store's queues.
const clusterKey = "cluster"

// ErrClusterMismatch: the store was served by a cluster whose etcd is not
// the one this node uses (another etcd, or one whose data was lost).
var ErrClusterMismatch = errors.New("the store belongs to another cluster")

// BindCluster records that the cluster id serves this router's store (the
// control pool's), or checks that it is the one recorded. A store served
// by one cluster cannot be served by another: its queues' heads are in the
// first one's etcd, and read without them every queue looks empty.
func (r *Router) BindCluster(ctx context.Context, id string) error {
	data, err := r.control.Get(ctx, controlContainer, clusterKey, nil)
	switch {
	case err == nil && string(data) == id:
		return nil
	case err == nil:
		return fmt.Errorf("%w: it was served by cluster %s, and this etcd holds cluster %s: "+
			"point the nodes at the etcd the store was served with, or restore its data (docs/cluster.md)", ErrClusterMismatch, data, id)
	case !errors.Is(err, drivers.ErrNotFound):
		return err
	}
	createOnly := r.control.Capabilities().CreateOnly != drivers.CreateOnlyNone
	err = r.control.Put(ctx, controlContainer, clusterKey, []byte(id), &drivers.PutOptions{CreateOnly: createOnly})
	if errors.Is(err, drivers.ErrPreconditionFailed) {
		// Another node bound it meanwhile: to this cluster, or not.
		data, err := r.control.Get(ctx, controlContainer, clusterKey, nil)
		if err != nil {
			return err
		}
		if string(data) != id {
			return fmt.Errorf("%w: it was just bound to cluster %s, and this etcd holds cluster %s", ErrClusterMismatch, data, id)
		}
		return nil
	}
	return err
}

// BoundCluster returns the id of the cluster that served this store, if
// one did: a single node warns at start that the cluster's queues will
// refuse it.
func (r *Router) BoundCluster(ctx context.Context) (string, bool) {
	data, err := r.control.Get(ctx, controlContainer, clusterKey, nil)
	return string(data), err == nil
}
