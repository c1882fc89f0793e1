package cluster

import (
	"context"
	"fmt"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cistern-mq/cistern/drivers"
	"github.com/cistern-mq/cistern/index"
)

// Fence returns the index.Fence of pool's engine: heads at
// <prefix>heads/<pool>/<index.RefKey(ref)>, committed only while this node
// owns the queue's shard at the epoch given. Every pool's fence shares the
// node's group commit.
func (n *Node) Fence(pool string) index.Fence { return &fence{n: n, pool: pool} }

type fence struct {
	n    *Node
	pool string
}

// Epoch is the owner key's CreateRevision of ref's shard, while this node
// holds it under a fresh lease and is not handing it off: a queue is not
// loaded anew while its shard is being released (the commits of what is
// loaded still pass until the owner key goes, so that Release can flush).
func (f *fence) Epoch(ref index.QueueRef) (int64, bool) {
	n := f.n
	s := n.shardOf(ref.Project, ref.Name)
	n.mu.RLock()
	defer n.mu.RUnlock()
	if !n.mine(s) || !n.fresh() || n.releasing[s] {
		return 0, false
	}
	return n.slots[s].epoch, true
}

// Head is a linearizable read of ref's head.
func (f *fence) Head(ctx context.Context, ref index.QueueRef) ([]byte, bool, error) {
	n := f.n
	ctx, cancel := context.WithTimeout(ctx, n.opts.RequestTimeout)
	defer cancel()
	start := time.Now()
	resp, err := n.cli.Get(ctx, n.keys.head(f.pool, ref))
	n.m.observe("head", start)
	if err != nil {
		return nil, false, fmt.Errorf("%w: etcd: read head of %s: %v", drivers.ErrUnavailable, ref, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, false, nil
	}
	return resp.Kvs[0].Value, true, nil
}

// Commit queues the head for the next group-commit txn and waits for it.
func (f *fence) Commit(ctx context.Context, ref index.QueueRef, epoch int64, head []byte) error {
	n := f.n
	s := n.shardOf(ref.Project, ref.Name)
	if n.checkLocally {
		if err := n.check(s, epoch); err != nil {
			return fmt.Errorf("%s: %w", ref, err)
		}
	}
	r := &commitReq{
		key:   n.keys.head(f.pool, ref),
		shard: s,
		epoch: epoch,
		value: string(head),
		del:   head == nil,
		done:  make(chan error, 1),
	}
	n.commits.add(r)
	select {
	case err := <-r.done:
		if err != nil {
			return fmt.Errorf("%s: %w", ref, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %s: commit outcome unknown: %w", drivers.ErrUnavailable, ref, ctx.Err())
	}
}

// check fails a commit that cannot pass without asking etcd: ErrFenced when
// the node does not hold s at epoch or its lease may have expired,
// ErrUnavailable when the lease is stale because etcd cannot be reached
// (the node does not know whether it lost s).
func (n *Node) check(s Shard, epoch int64) error {
	n.mu.RLock()
	defer n.mu.RUnlock()
	switch {
	case !n.mine(s) || n.slots[s].epoch != epoch:
		return fmt.Errorf("%w: shard %d not held at epoch %d", index.ErrFenced, s, epoch)
	case n.fresh():
		return nil
	case n.kaFailing:
		return fmt.Errorf("%w: etcd unreachable, lease unconfirmed", drivers.ErrUnavailable)
	default:
		return fmt.Errorf("%w: lease of shard %d unconfirmed", index.ErrFenced, s)
	}
}

// commitReq is one Commit waiting for its txn.
type commitReq struct {
	key   string
	shard Shard
	epoch int64
	value string
	del   bool
	done  chan error // buffered: the committer never blocks on a caller
}

// committer is the node's group commit: one txn in flight at a time, and
// the commits that arrive meanwhile go together in the next, up to
// maxTxnOps heads and maxTxnOps shards. Each txn compares the owner key of
// every shard involved with its epoch (ModRevision, which equals the
// CreateRevision since owner keys are never modified) and puts the heads;
// when a compare fails, its Else reads those owner keys so that only the
// commits of shards actually lost fail and the others go again at once.
type committer struct {
	n    *Node
	mu   sync.Mutex
	q    []*commitReq
	wake chan struct{}
}

func newCommitter(n *Node) *committer {
	return &committer{n: n, wake: make(chan struct{}, 1)}
}

func (c *committer) add(r *commitReq) {
	c.mu.Lock()
	c.q = append(c.q, r)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *committer) run() {
	defer c.n.wg.Done()
	for {
		select {
		case <-c.n.ctx.Done():
			c.mu.Lock()
			q := c.q
			c.q = nil
			c.mu.Unlock()
			for _, r := range q {
				r.done <- fmt.Errorf("%w: cluster node closed", drivers.ErrUnavailable)
			}
			return
		case <-c.wake:
		}
		for {
			batch := c.take()
			if len(batch) == 0 {
				break
			}
			c.commit(batch)
		}
	}
}

// take removes the next batch from the queue, in order, leaving for the
// next one a second commit of a key already in it (etcd refuses a txn that
// writes a key twice) and what is past the caps.
func (c *committer) take() []*commitReq {
	c.mu.Lock()
	defer c.mu.Unlock()
	var batch, rest []*commitReq
	keys := map[string]bool{}
	shards := map[Shard]bool{}
	for _, r := range c.q {
		fits := len(batch) < maxTxnOps && !keys[r.key] && (shards[r.shard] || len(shards) < maxTxnOps)
		if !fits {
			rest = append(rest, r)
			continue
		}
		batch = append(batch, r)
		keys[r.key] = true
		shards[r.shard] = true
	}
	c.q = rest
	return batch
}

// requeue puts reqs back at the head of the queue.
func (c *committer) requeue(reqs []*commitReq) {
	c.mu.Lock()
	c.q = append(reqs, c.q...)
	c.mu.Unlock()
}

// commit sends one batch as one txn and answers its callers.
func (c *committer) commit(batch []*commitReq) {
	n := c.n
	epochs := map[Shard]int64{}
	var shards []Shard
	var ops []clientv3.Op
	var reqs []*commitReq
	for _, r := range batch {
		e, seen := epochs[r.shard]
		if seen && e != r.epoch {
			// Two epochs of one shard: at most one is current; the other
			// goes in the next batch and meets its own compare there.
			c.requeue([]*commitReq{r})
			continue
		}
		if !seen {
			epochs[r.shard] = r.epoch
			shards = append(shards, r.shard)
		}
		if r.del {
			ops = append(ops, clientv3.OpDelete(r.key))
		} else {
			ops = append(ops, clientv3.OpPut(r.key, r.value))
		}
		reqs = append(reqs, r)
	}
	cmps := make([]clientv3.Cmp, len(shards))
	reads := make([]clientv3.Op, len(shards))
	for i, s := range shards {
		k := n.keys.owner(s)
		cmps[i] = clientv3.Compare(clientv3.ModRevision(k), "=", epochs[s])
		reads[i] = clientv3.OpGet(k)
	}
	ctx, cancel := context.WithTimeout(n.ctx, n.opts.RequestTimeout)
	defer cancel()
	start := time.Now()
	resp, err := n.cli.Txn(ctx).If(cmps...).Then(ops...).Else(reads...).Commit()
	n.m.observe("commit", start)
	n.m.commitTxns.Inc()
	n.m.commitOps.Add(float64(len(reqs)))
	if err != nil {
		for _, r := range reqs {
			r.done <- fmt.Errorf("%w: etcd: commit: %v", drivers.ErrUnavailable, err)
		}
		return
	}
	if resp.Succeeded {
		for _, r := range reqs {
			r.done <- nil
		}
		return
	}
	lost := map[Shard]bool{}
	for i, s := range shards {
		kvs := resp.Responses[i].GetResponseRange().GetKvs()
		if len(kvs) == 0 || kvs[0].ModRevision != epochs[s] {
			lost[s] = true
		}
	}
	var again []*commitReq
	for _, r := range reqs {
		if lost[r.shard] {
			r.done <- fmt.Errorf("%w: shard %d no longer held at epoch %d", index.ErrFenced, r.shard, r.epoch)
		} else {
			again = append(again, r)
		}
	}
	if len(again) > 0 {
		c.requeue(again)
	}
}
