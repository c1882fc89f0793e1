// Package cluster runs several Cistern nodes on one pool, with etcd
// deciding which node owns which queue and fencing every write (issue 10,
// docs/cluster.md).
//
// # Shards and the ring
//
// Queues fall into 2^P shards (Options.PartPower, default 8: 256 shards):
// the shard of (project, queue) is ring.Partition(P, project, queue). The
// shards are placed on the live nodes by a ring (package ring, one pool per
// node, weight 1, group "", seed 0). The ring is stored in etcd and changed
// by whichever node sees the set of member keys differ from the ring's
// pools: it builds the new ring from the stored one (so adding or removing a
// node moves only that node's fair share) and writes it in a txn
// conditioned on the ring key's ModRevision; a node that loses that race
// reads the winner's ring. The ring says who should own a shard; the owner
// key says who does.
//
// # Keys (all under Options.Prefix, default "/cistern/")
//
//	members/<node id>   JSON {"id","advertise"}, attached to the node's lease
//	ring                the ring (ring.Set.MarshalBinary), rewritten by CAS
//	owners/<shard>      the owning node's id (shard in decimal), attached to
//	                    its lease; created only by a txn If(CreateRevision==0)
//	                    and never modified, only deleted (handoff) or expired
//	heads/<pool>/<ref>  a queue's head (opaque to this package; ref is
//	                    index.RefKey), written only by fenced commits
//
// A node grants a lease of Options.LeaseTTL, registers its member key under
// it and renews it every TTL/5. It watches members/, owners/ and ring (one
// watch over the range) and reconciles: it creates the owner keys of the
// free shards the ring gives it and hands off those the ring gives others.
//
// # Epochs and fencing
//
// A shard's epoch is its owner key's CreateRevision. Since the key is never
// modified, its ModRevision equals that revision for as long as it exists,
// and a key created again (after a delete or an expiry) gets a new, larger
// revision: an epoch names one tenure of one node and is never reused.
//
// Fence(pool) is the index.Fence of that pool's engine. Commit writes heads
// in a txn that compares ModRevision(owners/<shard>) == epoch for every
// shard involved and puts (or, for a nil head, deletes) the heads. etcd
// applies the compare and the writes atomically, in one total order of
// revisions, so a head is committed only while the committer's tenure
// lasts. A node whose lease expired (paused, cut off, dead), or that handed
// the shard off, has had its owner key deleted, so its commits fail with
// index.ErrFenced whatever its clock, its view or its network says: safety
// needs nothing from the node's clock and nothing from the store. A new
// owner creates its key after the old one was deleted, then reads heads
// with a linearizable Get: it sees every head committed under an earlier
// epoch, and none can be committed after. An engine acknowledges a write
// only once its head is committed, so nothing acknowledged is lost, and
// what a stale owner wrote to the store but never committed is never read.
//
// Commit fails with drivers.ErrUnavailable (wrapped) when etcd cannot be
// reached or does not answer within Options.RequestTimeout. The outcome is
// then unknown: the txn may have been applied. The caller must not
// acknowledge, and must not assume the old head holds either.
//
// Commits are grouped: every pool's commits share one committer, which has
// one txn in flight and puts whatever arrived meanwhile in the next one, up
// to 64 heads and 64 distinct shards per txn (etcd refuses more than 128
// operations of a kind). When a compare fails, the txn's Else branch reads
// the owner keys involved: the callers of the shards actually lost get
// ErrFenced and the others go again in the next txn.
//
// # Freshness
//
// Owner and Epoch answer for a shard only while the node holds its owner key
// and its lease is fresh: a keepalive that etcd answered was sent less than
// TTL - TTL/5 ago. etcd cannot expire the lease before that send time plus
// the TTL, so a node that answers from memory (reads, claims) does so only
// while no other node can have the shard, up to the clock rate drift the
// margin covers. A process resumed after a pause longer than that answers
// not-self until a keepalive is answered again (by then it has lost its
// keys anyway). Without freshness, commits fail locally, without a round
// trip: ErrFenced, or ErrUnavailable when the keepalives fail because etcd
// cannot be reached (the node does not know whether it lost anything).
//
// # Handoff and loss
//
// To hand a shard off (the ring gives it to another node, or Leave), the
// node first stops answering self for it (Owner) and stops loading its
// queues (Epoch), then calls
// Options.Release for its queues, during which their commits still pass so
// that the engines flush, and only then deletes the owner key, conditioned
// on its epoch. A shard lost without handoff (its key expired or deleted by
// another) is dropped at once and Release is called for its queues, whose
// commits already fail. When the lease itself is gone, the node drops every
// shard, releases them and registers again under a new lease, by itself.
//
// Node ids are unique per live process. So an owner key naming this node
// under another lease was left by an earlier process with this id (killed
// and restarted): the node deletes it, conditioned on its epoch, and
// acquires the shard again at once instead of waiting for the old lease to
// expire. Deleting the key is what fences the old process, were it only
// paused.
//
// Leave (SIGTERM) stops acquiring, deletes the member key (the others
// rebalance the ring without this node), hands off every shard and revokes
// the lease. Close stops without handoff: the keys expire with the lease,
// as with kill -9, and the others take the shards within the TTL.
package cluster
