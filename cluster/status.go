package cluster

// Status is the node's view of the cluster, for GET /v2/health (admin).
type Status struct {
	// Self is this node's id.
	Self NodeID `json:"self"`
	// Members are the live members, sorted by id.
	Members []MemberStatus `json:"members"`
	// Shards is the shard count; Unowned how many have no owner key now.
	Shards  int `json:"shards"`
	Unowned int `json:"unowned"`
	// RingVersion counts the ring's changes (0: no ring yet).
	RingVersion uint64 `json:"ring_version"`
}

// MemberStatus is one member as this node sees it.
type MemberStatus struct {
	ID        NodeID `json:"id"`
	Advertise string `json:"advertise"`
	// Shards is how many owner keys name the member.
	Shards int `json:"shards"`
}

// Owner tells who serves (project, queue): self when this node holds its
// shard under a fresh lease and is not handing it off; else owner is the
// base URL of the node that holds it, "" when nobody does (or this node
// holds it but cannot vouch for it now): the caller answers 503 then.
func (n *Node) Owner(project, queue string) (self bool, owner string) {
	s := n.shardOf(project, queue)
	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.mine(s) {
		return n.fresh() && !n.releasing[s], ""
	}
	holder := n.slots[s].node
	if holder == "" || holder == n.opts.NodeID {
		return false, ""
	}
	return false, n.members[holder].Advertise
}

// Members returns Status (as any, the shape the server's interface wants).
func (n *Node) Members() any { return n.Status() }

// Status returns the node's view of members and ownership.
func (n *Node) Status() Status {
	n.mu.RLock()
	defer n.mu.RUnlock()
	st := Status{Self: n.opts.NodeID, Shards: len(n.slots), Members: []MemberStatus{}}
	if n.ring != nil {
		st.RingVersion = n.ring.Version()
	}
	count := map[NodeID]int{}
	for _, sl := range n.slots {
		if sl.node == "" {
			st.Unowned++
		}
		count[sl.node]++
	}
	for _, id := range n.memberIDs() {
		st.Members = append(st.Members, MemberStatus{ID: id, Advertise: n.members[id].Advertise, Shards: count[id]})
	}
	return st
}

// OwnedShards returns how many shards this node holds now.
func (n *Node) OwnedShards() int {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return len(n.ownedLocked())
}
