package cluster

import (
	"encoding/json"
	"slices"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cistern-mq/cistern/ring"
)

// member is the value of a member key.
type member struct {
	ID        NodeID `json:"id"`
	Advertise string `json:"advertise"`
}

// slot is what the node knows of one shard's owner key.
type slot struct {
	node  NodeID // "" while the key is absent
	lease clientv3.LeaseID
	epoch int64 // the key's CreateRevision
	// rev is the revision of the newest state applied, so that the echo of
	// an older event never undoes a newer one learnt from a txn response.
	rev int64
}

// The node's view of etcd (members, ring, owner keys) is kept in Node under
// mu; these methods change it and must be called with mu held for writing.

// applyEvent applies one watch event at its revision and adds the shards
// this node lost by it to lost.
func (n *Node) applyEvent(ev *clientv3.Event, lost *[]Shard) {
	kv := ev.Kv
	if ev.Type == mvccpb.DELETE {
		n.applyKey(string(kv.Key), nil, kv.ModRevision, lost)
		return
	}
	n.applyKey(string(kv.Key), kv, kv.ModRevision, lost)
}

// applyKey sets one watched key to kv (nil: absent) as of revision rev.
func (n *Node) applyKey(key string, kv *mvccpb.KeyValue, rev int64, lost *[]Shard) {
	kind, id, s := n.keys.parse(key, len(n.slots))
	switch kind {
	case keyMember:
		if kv == nil {
			delete(n.members, id)
			return
		}
		var m member
		if err := json.Unmarshal(kv.Value, &m); err != nil || m.ID != id {
			n.log.Warn().Str("key", key).Msg("cluster: ignoring a malformed member key")
			return
		}
		n.members[id] = m
	case keyRing:
		if rev <= n.ringRev && kv != nil {
			return
		}
		if kv == nil {
			n.ring, n.ringRev, n.assign = nil, 0, nil
			return
		}
		var set ring.Set
		if err := set.UnmarshalBinary(kv.Value); err != nil || set.PartPower() != n.opts.PartPower {
			n.log.Error().Err(err).Uint8("part_power", set.PartPower()).Msg("cluster: ignoring a ring this node cannot use")
			return
		}
		n.setRing(&set, kv.ModRevision)
	case keyOwner:
		sl := &n.slots[s]
		if rev <= sl.rev {
			return
		}
		was := n.mine(s)
		if kv == nil {
			*sl = slot{rev: rev}
		} else {
			*sl = slot{node: NodeID(kv.Value), lease: clientv3.LeaseID(kv.Lease), epoch: kv.CreateRevision, rev: rev}
		}
		if was && !n.mine(s) && !n.releasing[s] {
			*lost = append(*lost, s)
		}
	}
}

func (n *Node) setRing(set *ring.Set, rev int64) {
	n.ring, n.ringRev = set, rev
	n.assign = nil
	if r := set.Ring(""); r != nil {
		n.assign = r.Assignment()
	}
}

// reset replaces the whole view with a listing taken at revision rev.
func (n *Node) reset(kvs []*mvccpb.KeyValue, rev int64, lost *[]Shard) {
	n.members = map[NodeID]member{}
	seen := make([]bool, len(n.slots))
	ring := false
	for _, kv := range kvs {
		kind, _, s := n.keys.parse(string(kv.Key), len(n.slots))
		switch kind {
		case keyOwner:
			seen[s] = true
		case keyRing:
			ring = true
		}
		n.applyKey(string(kv.Key), kv, kv.ModRevision, lost)
	}
	if !ring {
		n.ring, n.ringRev, n.assign = nil, 0, nil
	}
	for s := range n.slots {
		if !seen[s] && n.slots[s].rev < rev {
			n.applyKey(n.keys.owner(Shard(s)), nil, rev, lost)
		}
	}
}

// mine reports whether this node holds shard s under its current lease.
func (n *Node) mine(s Shard) bool {
	sl := n.slots[s]
	return n.lease != 0 && sl.node == n.opts.NodeID && sl.lease == n.lease
}

// ownedLocked lists the shards this node holds.
func (n *Node) ownedLocked() []Shard {
	var out []Shard
	for s := range n.slots {
		if n.mine(Shard(s)) {
			out = append(out, Shard(s))
		}
	}
	return out
}

// memberIDs returns the live members, sorted.
func (n *Node) memberIDs() []NodeID {
	ids := make([]NodeID, 0, len(n.members))
	for id := range n.members {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}
