package cluster

import (
	"context"
	"fmt"
	"slices"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cistern-mq/cistern/ring"
)

// maxTxnOps caps the compares and the puts or deletes of one txn: etcd
// refuses more than 128 of either by default, and half leaves headroom.
const maxTxnOps = 64

// reconcile brings etcd toward what the ring says: the ring itself when
// the members changed, then the shards this node must hand off or may
// acquire. A step that fails is tried again at the next pass.
func (n *Node) reconcile(ctx context.Context) {
	if err := n.rebalance(ctx); err != nil {
		n.log.Warn().Err(err).Msg("cluster: rebalance")
	}
	give, take, reclaim := n.plan()
	for len(reclaim) > 0 {
		batch := reclaim[:min(len(reclaim), maxTxnOps)]
		reclaim = reclaim[len(batch):]
		if err := n.deleteOwned(ctx, batch, ""); err != nil {
			n.log.Warn().Err(err).Msg("cluster: reclaim")
		}
	}
	if len(give) > 0 {
		if err := n.handOff(ctx, give); err != nil {
			n.log.Warn().Err(err).Msg("cluster: hand off")
		}
	}
	for len(take) > 0 {
		batch := take[:min(len(take), maxTxnOps)]
		take = take[len(batch):]
		if err := n.acquire(ctx, batch); err != nil {
			n.log.Warn().Err(err).Msg("cluster: acquire")
			return
		}
	}
}

// rebalance writes a new ring when the live members differ from the ring's
// pools. The ring is built from the stored one, so only a fair share moves,
// and written only if nobody changed it since it was read (CAS on its
// ModRevision); a node that loses the race reads the winner's ring instead.
func (n *Node) rebalance(ctx context.Context) error {
	n.mu.RLock()
	live := n.memberIDs()
	prev, prevRev := n.ring, n.ringRev
	n.mu.RUnlock()
	if len(live) == 0 || slices.Equal(live, ringMembers(prev)) {
		return nil
	}
	b, err := ring.NewBuilder(prev, &ring.Options{PartPower: n.opts.PartPower})
	if err != nil {
		return err
	}
	for _, id := range live {
		if err := b.SetPool(ring.Pool{ID: ring.PoolID(id), Weight: 1}); err != nil {
			return err
		}
	}
	set, err := b.Rebalance()
	if err != nil {
		return err
	}
	data, _ := set.MarshalBinary()
	ctx, cancel := context.WithTimeout(ctx, n.opts.RequestTimeout)
	defer cancel()
	start := time.Now()
	resp, err := n.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(n.keys.ring()), "=", prevRev)).
		Then(clientv3.OpPut(n.keys.ring(), string(data))).
		Commit()
	n.m.observe("ring", start)
	if err != nil {
		return err
	}
	if !resp.Succeeded {
		return nil // another node wrote it first; the watch brings it
	}
	n.mu.Lock()
	if resp.Header.Revision > n.ringRev {
		n.setRing(set, resp.Header.Revision)
	}
	n.mu.Unlock()
	n.log.Info().Int("members", len(live)).Uint64("version", set.Version()).Msg("cluster: ring rebalanced")
	return nil
}

// ringMembers returns the pools of set as node ids, sorted.
func ringMembers(set *ring.Set) []NodeID {
	var ids []NodeID
	if set == nil {
		return nil
	}
	for _, p := range set.Pools() {
		ids = append(ids, NodeID(p.ID))
	}
	return ids
}

// plan lists the shards this node holds and the ring gives to another
// (give), the free shards the ring gives to this node (take), and the keys
// that name this node under another lease (reclaim): left by an earlier
// process with this id, which is dead since ids are unique, so the node
// deletes them (fencing that process) rather than wait for them to expire.
func (n *Node) plan() (give, take, reclaim []Shard) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.assign == nil {
		return nil, nil, nil
	}
	self := ring.PoolID(n.opts.NodeID)
	canTake := !n.leaving && n.fresh()
	for i, target := range n.assign {
		s := Shard(i)
		switch {
		case n.mine(s) && target != self && !n.releasing[s]:
			give = append(give, s)
		case n.slots[s].node == "" && target == self && canTake:
			take = append(take, s)
		case n.slots[s].node == n.opts.NodeID && !n.mine(s) && canTake:
			reclaim = append(reclaim, s)
		}
	}
	return give, take, reclaim
}

// acquire creates the owner keys of shards under this node's lease, all or
// none in one txn; when one was taken meanwhile it tries each alone.
func (n *Node) acquire(ctx context.Context, shards []Shard) error {
	n.mu.RLock()
	lease := n.lease
	n.mu.RUnlock()
	if lease == 0 {
		return nil
	}
	ok, err := n.create(ctx, lease, shards)
	if err != nil || ok || len(shards) == 1 {
		return err
	}
	for _, s := range shards {
		if _, err := n.create(ctx, lease, []Shard{s}); err != nil {
			return err
		}
	}
	return nil
}

// create is one acquiring txn: If every key is absent, Then put them all.
func (n *Node) create(ctx context.Context, lease clientv3.LeaseID, shards []Shard) (bool, error) {
	cmps := make([]clientv3.Cmp, len(shards))
	puts := make([]clientv3.Op, len(shards))
	for i, s := range shards {
		k := n.keys.owner(s)
		cmps[i] = clientv3.Compare(clientv3.CreateRevision(k), "=", 0)
		puts[i] = clientv3.OpPut(k, string(n.opts.NodeID), clientv3.WithLease(lease))
	}
	ctx, cancel := context.WithTimeout(ctx, n.opts.RequestTimeout)
	defer cancel()
	start := time.Now()
	resp, err := n.cli.Txn(ctx).If(cmps...).Then(puts...).Commit()
	n.m.observe("acquire", start)
	if err != nil {
		return false, err
	}
	if !resp.Succeeded {
		return false, nil
	}
	// Every put of a txn gets the txn's revision: that is each key's
	// CreateRevision, the shard's epoch.
	rev := resp.Header.Revision
	n.mu.Lock()
	for _, s := range shards {
		if n.slots[s].rev < rev {
			n.slots[s] = slot{node: n.opts.NodeID, lease: lease, epoch: rev, rev: rev}
		}
	}
	n.mu.Unlock()
	n.m.changes.WithLabelValues(changeAcquired).Add(float64(len(shards)))
	n.log.Debug().Int("shards", len(shards)).Int64("epoch", rev).Msg("cluster: acquired")
	return true, nil
}

// handOff releases shards this node holds: it marks them releasing (Owner
// stops answering self), has the engines flush and unload their queues
// (commits still pass), then deletes each owner key if it is still the one
// this node created.
func (n *Node) handOff(ctx context.Context, shards []Shard) error {
	n.mu.Lock()
	var mine []Shard
	for _, s := range shards {
		if n.mine(s) && !n.releasing[s] {
			n.releasing[s] = true
			mine = append(mine, s)
		}
	}
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		for _, s := range mine {
			delete(n.releasing, s)
		}
		n.mu.Unlock()
	}()
	if len(mine) == 0 {
		return nil
	}
	n.release(ctx, mine)
	var firstErr error
	for rest := mine; len(rest) > 0; {
		batch := rest[:min(len(rest), maxTxnOps)]
		rest = rest[len(batch):]
		if err := n.deleteOwned(ctx, batch, changeReleased); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// deleteOwned deletes the owner keys of shards, each only at the epoch this
// node knows; one txn, or one per key when some key changed meanwhile. The
// deletes count as change in the metrics ("": not counted).
func (n *Node) deleteOwned(ctx context.Context, shards []Shard, change string) error {
	n.mu.RLock()
	epochs := make([]int64, len(shards))
	for i, s := range shards {
		epochs[i] = n.slots[s].epoch
	}
	n.mu.RUnlock()
	del := func(idx []int) (bool, error) {
		var cmps []clientv3.Cmp
		var ops []clientv3.Op
		for _, i := range idx {
			k := n.keys.owner(shards[i])
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(k), "=", epochs[i]))
			ops = append(ops, clientv3.OpDelete(k))
		}
		rctx, cancel := context.WithTimeout(ctx, n.opts.RequestTimeout)
		defer cancel()
		start := time.Now()
		resp, err := n.cli.Txn(rctx).If(cmps...).Then(ops...).Commit()
		n.m.observe("release", start)
		if err != nil {
			return false, fmt.Errorf("delete owner keys: %w", err)
		}
		if resp.Succeeded {
			n.mu.Lock()
			for _, i := range idx {
				if s := shards[i]; n.slots[s].rev < resp.Header.Revision {
					n.slots[s] = slot{rev: resp.Header.Revision}
				}
			}
			n.mu.Unlock()
			if change != "" {
				n.m.changes.WithLabelValues(change).Add(float64(len(idx)))
			}
		}
		return resp.Succeeded, nil
	}
	all := make([]int, len(shards))
	for i := range all {
		all[i] = i
	}
	ok, err := del(all)
	if err != nil || ok || len(shards) == 1 {
		return err
	}
	for i := range shards {
		if _, err := del([]int{i}); err != nil {
			return err
		}
	}
	return nil
}
