package enginetest

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cistern-mq/cistern/cluster"
	"github.com/cistern-mq/cistern/drivers"
	"github.com/cistern-mq/cistern/index"
)

// The scenarios through a cluster (issue 10: "the engine scenarios pass
// through any node"): three nodes joined to a real etcd, each with its own
// engine fenced by its node, over one store. What a scenario opens as one
// engine is the three behind a front (ClusterEngine) that calls, for each
// queue, the engine of the node that owns it now; a crash kills the three
// at once (their stores fail and their nodes stop without handing off,
// as kill -9 would), and the next Open starts three nodes of the same ids,
// which take their shards back at once (cluster/doc.go).

// clusterNodes is how many nodes a cluster scenario runs.
const clusterNodes = 3

// clusterPool names the pool the engines share (their heads' keys).
const clusterPool = "default"

// ownerWait bounds how long a call waits for its queue to have an owner
// among the nodes (a hand-off under way), before ErrNotOwner.
const ownerWait = 10 * time.Second

// RunCluster runs the scenarios on three nodes of a cluster on the etcd at
// endpoints, node i over stores[i] (one store, or one client each of one
// store: they must share their objects). Fencing is left out: it checks
// that a store's create-only puts fence two single nodes, which a cluster
// does not rely on (its fencing is etcd's, tested in package cluster and
// in index's cluster model test).
func RunCluster(t *testing.T, endpoints []string, stores []drivers.Store, short bool) {
	if len(stores) != clusterNodes {
		t.Fatalf("RunCluster: %d stores, want %d", len(stores), clusterNodes)
	}
	run := time.Now().UnixNano()
	project := fmt.Sprintf("etc-%d", run)
	h := func(t *testing.T, name string) *Harness {
		prefix := fmt.Sprintf("/enginetest/%d/%s/", run, name)
		var last *ClusterEngine
		return &Harness{T: t, Store: stores[0], Clock: NewClock(), Project: project,
			OpenEngine: func(h *Harness) (Engine, Crasher) {
				h.T.Helper()
				if last != nil && !last.down.Load() {
					// Two live nodes of one id would break the cluster's
					// premise; every scenario closes or crashes first.
					h.T.Fatal("RunCluster: a cluster opened while the last one runs")
				}
				last = OpenCluster(h, endpoints, prefix, stores)
				return last, last
			}}
	}
	t.Run("Lifecycle", func(t *testing.T) { Lifecycle(h(t, "life")) })
	t.Run("CrashRecovery", func(t *testing.T) { CrashRecovery(h(t, "crash"), short) })
	t.Run("DeadLetter", func(t *testing.T) { DeadLetter(h(t, "dead")) })
	t.Run("ConcurrentConsumers", func(t *testing.T) { ConcurrentConsumers(h(t, "busy"), short) })
}

// ClusterEngine is three nodes of a cluster, each with its engine, seen as
// one Engine: each call goes to the engine of the queue's owner.
type ClusterEngine struct {
	t       testing.TB
	nodes   []*cluster.Node
	engines []*index.Engine
	stores  []*Crashable
	// down is set by Crash and Close: calls fail from then on.
	down  atomic.Bool
	close sync.Once
}

// OpenCluster joins clusterNodes nodes (ids node-0, node-1...) under
// prefix, opens their engines over stores, and returns once every shard
// has an owner. Close (or the end of the test) closes it.
func OpenCluster(h *Harness, endpoints []string, prefix string, stores []drivers.Store) *ClusterEngine {
	h.T.Helper()
	c := &ClusterEngine{t: h.T}
	h.T.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range clusterNodes {
		id := fmt.Sprintf("node-%d", i)
		// The node joins before its engine opens; Release reaches the
		// engine once there is one.
		var eng atomic.Pointer[index.Engine]
		n, err := cluster.Join(ctx, cluster.Options{
			Endpoints: endpoints,
			NodeID:    cluster.NodeID(id),
			Advertise: "http://" + id + ".invalid", // no HTTP here: calls go to engines directly
			LeaseTTL:  3 * time.Second,
			Prefix:    prefix,
			Logger:    zerolog.Nop(),
			Release: func(ctx context.Context, match func(index.QueueRef) bool) error {
				if e := eng.Load(); e != nil {
					return e.Release(ctx, match)
				}
				return nil
			},
		})
		if err != nil {
			h.T.Fatalf("join %s: %v", id, err)
		}
		c.nodes = append(c.nodes, n)
		e, crash := h.openEngine(stores[i], n.Fence(clusterPool))
		// A move to a dead-letter queue goes to the engine of its owner.
		e.SetDeadLetters(c)
		eng.Store(e)
		c.engines = append(c.engines, e)
		c.stores = append(c.stores, crash)
	}
	Eventually(h.T, "every shard owned, by all three nodes", func() bool {
		owned := 0
		for _, n := range c.nodes {
			st := n.Status()
			if st.Unowned != 0 || len(st.Members) != clusterNodes {
				return false
			}
			for _, m := range st.Members {
				if m.Shards == 0 {
					return false
				}
			}
			owned += n.OwnedShards()
		}
		return owned == c.nodes[0].Status().Shards
	})
	return c
}

// Crash kills the three nodes at once: their stores fail, their nodes stop
// without handing off (their keys stay until their lease expires, or
// until nodes of the same ids take them back).
func (c *ClusterEngine) Crash() {
	c.down.Store(true)
	for _, s := range c.stores {
		s.Crash()
	}
	for _, n := range c.nodes {
		n.Close()
	}
}

// Close flushes and closes the engines, then stops the nodes (the next
// nodes of the same ids take the shards back at once).
func (c *ClusterEngine) Close() error {
	c.close.Do(func() {
		c.down.Store(true)
		for _, e := range c.engines {
			e.Close()
		}
		for _, n := range c.nodes {
			n.Close()
		}
	})
	return nil
}

// owner returns the engine of ref's owner, waiting out a hand-off.
func (c *ClusterEngine) owner(ref index.QueueRef) (*index.Engine, error) {
	deadline := time.Now().Add(ownerWait)
	for {
		if c.down.Load() {
			return nil, fmt.Errorf("%w: %s: the cluster is down", index.ErrNotOwner, ref)
		}
		for i, n := range c.nodes {
			if self, _ := n.Owner(ref.Project, ref.Name); self {
				return c.engines[i], nil
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%w: %s: no node owns it", index.ErrNotOwner, ref)
		}
		idle()
	}
}

// Owner returns the index of the node that owns ref now (-1: none).
func (c *ClusterEngine) Owner(ref index.QueueRef) int {
	for i, n := range c.nodes {
		if self, _ := n.Owner(ref.Project, ref.Name); self {
			return i
		}
	}
	return -1
}

// CreateQueue implements Engine.
func (c *ClusterEngine) CreateQueue(ctx context.Context, ref index.QueueRef, meta json.RawMessage) (bool, error) {
	e, err := c.owner(ref)
	if err != nil {
		return false, err
	}
	return e.CreateQueue(ctx, ref, meta)
}

// Queue implements Engine.
func (c *ClusterEngine) Queue(ctx context.Context, ref index.QueueRef) (index.QueueInfo, bool, error) {
	e, err := c.owner(ref)
	if err != nil {
		return index.QueueInfo{}, false, err
	}
	return e.Queue(ctx, ref)
}

// DeleteQueue implements Engine.
func (c *ClusterEngine) DeleteQueue(ctx context.Context, ref index.QueueRef) error {
	e, err := c.owner(ref)
	if err != nil {
		return err
	}
	return e.DeleteQueue(ctx, ref)
}

// ListQueues implements Engine: the list spans owners and reads the
// shared catalog, so any node answers it (as the server lets any node);
// every node is asked, and they must agree.
func (c *ClusterEngine) ListQueues(ctx context.Context, project, marker string, limit int, detailed bool) ([]index.QueueInfo, error) {
	if c.down.Load() {
		return nil, fmt.Errorf("%w: the cluster is down", drivers.ErrUnavailable)
	}
	var all []index.QueueInfo
	for _, e := range c.engines {
		qs, err := e.ListQueues(ctx, project, marker, limit, detailed)
		if err != nil {
			return nil, err
		}
		if all != nil && fmt.Sprint(qs) != fmt.Sprint(all) {
			return nil, fmt.Errorf("the nodes list different queues: %+v and %+v", all, qs)
		}
		all = qs
	}
	return all, nil
}

// Stats implements Engine.
func (c *ClusterEngine) Stats(ctx context.Context, ref index.QueueRef) (index.Stats, error) {
	e, err := c.owner(ref)
	if err != nil {
		return index.Stats{}, err
	}
	return e.Stats(ctx, ref)
}

// Post implements Engine.
func (c *ClusterEngine) Post(ctx context.Context, ref index.QueueRef, clientID string, msgs []index.NewMessage) ([]string, error) {
	e, err := c.owner(ref)
	if err != nil {
		return nil, err
	}
	return e.Post(ctx, ref, clientID, msgs)
}

// PostMoved implements index.DeadLetterPoster: the move goes to the
// dead-letter queue's owner.
func (c *ClusterEngine) PostMoved(ctx context.Context, ref index.QueueRef, clientID string, msg index.NewMessage, origin string) (string, error) {
	e, err := c.owner(ref)
	if err != nil {
		return "", err
	}
	return e.PostMoved(ctx, ref, clientID, msg, origin)
}

// List implements Engine.
func (c *ClusterEngine) List(ctx context.Context, ref index.QueueRef, o index.ListOptions) ([]index.Message, error) {
	e, err := c.owner(ref)
	if err != nil {
		return nil, err
	}
	return e.List(ctx, ref, o)
}

// Pop implements Engine.
func (c *ClusterEngine) Pop(ctx context.Context, ref index.QueueRef, n int) ([]index.Message, error) {
	e, err := c.owner(ref)
	if err != nil {
		return nil, err
	}
	return e.Pop(ctx, ref, n)
}

// DeleteMessage implements Engine.
func (c *ClusterEngine) DeleteMessage(ctx context.Context, ref index.QueueRef, id, claimID string) error {
	e, err := c.owner(ref)
	if err != nil {
		return err
	}
	return e.DeleteMessage(ctx, ref, id, claimID)
}

// Claim implements Engine.
func (c *ClusterEngine) Claim(ctx context.Context, ref index.QueueRef, o index.ClaimOptions) (*index.Claim, error) {
	e, err := c.owner(ref)
	if err != nil {
		return nil, err
	}
	return e.Claim(ctx, ref, o)
}

// GetClaim implements Engine.
func (c *ClusterEngine) GetClaim(ctx context.Context, ref index.QueueRef, id string) (*index.Claim, error) {
	e, err := c.owner(ref)
	if err != nil {
		return nil, err
	}
	return e.GetClaim(ctx, ref, id)
}

// ReleaseClaim implements Engine.
func (c *ClusterEngine) ReleaseClaim(ctx context.Context, ref index.QueueRef, id string) error {
	e, err := c.owner(ref)
	if err != nil {
		return err
	}
	return e.ReleaseClaim(ctx, ref, id)
}
