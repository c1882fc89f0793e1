package cluster

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"
	clientv3 "go.etcd.io/etcd/client/v3"
	"pgregory.net/rapid"

	"github.com/cistern-mq/cistern/cluster/etcdtest"
	"github.com/cistern-mq/cistern/drivers"
	"github.com/cistern-mq/cistern/index"
)

// modelPartPower gives 4 shards: few enough that nodes contend for each.
const modelPartPower = 2

// limitRapid lowers rapid's defaults for a test whose every check runs real
// nodes on a real etcd, unless the command line set them.
func limitRapid(checks, steps string) {
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for name, v := range map[string]string{"rapid.checks": checks, "rapid.steps": steps} {
		if f := flag.Lookup(name); f != nil && !set[name] {
			f.Value.Set(v)
		}
	}
}

// modelNode is a node the model test joined and has not stopped.
type modelNode struct {
	n      *Node
	paused bool
	// seen are the epochs this node ever had, by shard: the stale epochs
	// the test tries again later.
	seen map[Shard][]int64
}

// modelRun is one rapid check: nodes join, leave, die, pause and commit on
// one etcd prefix, and every commit's outcome is checked against what was
// committed before.
type modelRun struct {
	cli    *clientv3.Client
	eps    []string
	prefix string
	nextID int
	nodes  map[NodeID]*modelNode
	queues []index.QueueRef
	// lastEpoch is the epoch of the newest successful commit per shard;
	// epochNode who committed under each epoch.
	lastEpoch map[Shard]int64
	epochNode map[int64]NodeID
	// heads is the value last committed per queue.
	heads map[index.QueueRef]string
	value int
	stats *modelStats
}

func TestOwnershipModel(t *testing.T) {
	limitRapid("5", "30")
	e := etcdtest.Start(t)
	cli, err := clientv3.New(clientv3.Config{Endpoints: e.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	run := 0
	var total modelStats
	rapid.Check(t, func(rt *rapid.T) {
		run++
		m := &modelRun{
			stats:     &total,
			cli:       cli,
			eps:       e.Endpoints(),
			prefix:    fmt.Sprintf("/model/%d/", run),
			nodes:     map[NodeID]*modelNode{},
			lastEpoch: map[Shard]int64{},
			epochNode: map[int64]NodeID{},
			heads:     map[index.QueueRef]string{},
		}
		for i := range 8 {
			m.queues = append(m.queues, index.QueueRef{Project: "p", Name: fmt.Sprintf("q%d", i)})
		}
		defer func() {
			for _, mn := range m.nodes {
				mn.n.Close()
			}
		}()
		// A prelude that always makes stale epochs: n1 commits everywhere,
		// n2 joins and takes its half, and n1 tries its old epochs.
		m.join(rt)
		m.commit(rt)
		m.join(rt)
		m.settle(rt)
		m.commit(rt)
		rt.Repeat(map[string]func(*rapid.T){
			"join":   m.join,
			"leave":  m.leave,
			"kill":   m.kill,
			"pause":  m.pause,
			"resume": m.resume,
			"commit": m.commit,
			"settle": m.settle,
			"expire": m.expire,
		})
	})
	// Not a vacuous run: commits passed, and stale ones were refused.
	t.Logf("commits: %+v", total)
	if total.ok == 0 || total.fenced == 0 {
		t.Fatalf("the model exercised too little: %+v", total)
	}
}

type modelStats struct{ ok, fenced, unavailable int }

func (m *modelRun) ids() []NodeID {
	var ids []NodeID
	for id := range m.nodes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (m *modelRun) pick(rt *rapid.T, pred func(*modelNode) bool) *modelNode {
	var ids []NodeID
	for _, id := range m.ids() {
		if pred(m.nodes[id]) {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		rt.Skip("no node fits")
	}
	return m.nodes[rapid.SampledFrom(ids).Draw(rt, "node")]
}

func (m *modelRun) join(rt *rapid.T) {
	if len(m.nodes) >= 3 {
		rt.Skip("three nodes already")
	}
	m.nextID++
	id := NodeID(fmt.Sprintf("n%d", m.nextID))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := Join(ctx, Options{
		Endpoints:      m.eps,
		NodeID:         id,
		Advertise:      "http://" + string(id),
		LeaseTTL:       time.Second,
		PartPower:      modelPartPower,
		Prefix:         m.prefix,
		RequestTimeout: 2 * time.Second,
		Logger:         zerolog.Nop(),
	})
	if err != nil {
		rt.Fatalf("join %s: %v", id, err)
	}
	// Half the nodes send every commit to etcd, stale or not, so that the
	// fence in etcd is what refuses them.
	n.checkLocally = rapid.Bool().Draw(rt, "check locally")
	m.nodes[id] = &modelNode{n: n, seen: map[Shard][]int64{}}
}

func (m *modelRun) leave(rt *rapid.T) {
	mn := m.pick(rt, func(*modelNode) bool { return true })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := mn.n.Leave(ctx); err != nil && !mn.paused {
		rt.Fatalf("leave %s: %v", mn.n.ID(), err)
	}
	delete(m.nodes, mn.n.ID())
}

func (m *modelRun) kill(rt *rapid.T) {
	mn := m.pick(rt, func(*modelNode) bool { return true })
	mn.n.Close()
	delete(m.nodes, mn.n.ID())
}

func (m *modelRun) pause(rt *rapid.T) {
	mn := m.pick(rt, func(mn *modelNode) bool { return !mn.paused })
	mn.n.Pause(true)
	mn.paused = true
}

func (m *modelRun) resume(rt *rapid.T) {
	mn := m.pick(rt, func(mn *modelNode) bool { return mn.paused })
	mn.n.Pause(false)
	mn.paused = false
}

// settle waits until every shard has an owner key and no running node has
// anything left to hand off or acquire, when some node runs.
func (m *modelRun) settle(rt *rapid.T) {
	m.pick(rt, func(mn *modelNode) bool { return !mn.paused })
	poll(rt, "ownership settled", func() bool {
		resp, err := m.cli.Get(context.Background(), m.prefix+"owners/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil || resp.Count != 1<<modelPartPower {
			return false
		}
		for _, mn := range m.nodes {
			if give, take, reclaim := mn.n.plan(); !mn.paused && len(give)+len(take)+len(reclaim) > 0 {
				return false
			}
		}
		return true
	})
}

// expire waits until a paused node's lease is gone in etcd.
func (m *modelRun) expire(rt *rapid.T) {
	mn := m.pick(rt, func(mn *modelNode) bool { return mn.paused })
	mn.n.mu.RLock()
	lease := mn.n.lease
	mn.n.mu.RUnlock()
	poll(rt, "lease expiry", func() bool {
		resp, err := m.cli.TimeToLive(context.Background(), lease)
		return err == nil && resp.TTL == -1
	})
}

// poll waits for cond, failing after 30 s.
func poll(rt *rapid.T, what string, cond func() bool) {
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			rt.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// commit has every node commit a new value to every queue, each under the
// epoch it holds now and under every one it held before, and checks each
// outcome.
func (m *modelRun) commit(rt *rapid.T) {
	for _, ref := range m.queues {
		for _, id := range m.ids() {
			m.commitFrom(rt, m.nodes[id], ref)
		}
	}
}

func (m *modelRun) commitFrom(rt *rapid.T, mn *modelNode, ref index.QueueRef) {
	f := mn.n.Fence("pool")
	s := mn.n.shardOf(ref.Project, ref.Name)
	epoch, ok := f.Epoch(ref)
	if ok && !slices.Contains(mn.seen[s], epoch) {
		mn.seen[s] = append(mn.seen[s], epoch)
	}
	// Every epoch this node held before is tried as well: each must fail.
	for _, e := range mn.seen[s] {
		if !ok || e != epoch {
			m.commitAt(rt, mn, ref, s, e)
		}
	}
	if ok {
		m.commitAt(rt, mn, ref, s, epoch)
	}
}

func (m *modelRun) commitAt(rt *rapid.T, mn *modelNode, ref index.QueueRef, s Shard, epoch int64) {
	f := mn.n.Fence("pool")
	m.value++
	val := fmt.Sprintf("v%d", m.value)
	err := f.Commit(context.Background(), ref, epoch, []byte(val))
	head, rev := m.head(rt, ref)
	switch {
	case err == nil:
		m.stats.ok++
	case errors.Is(err, index.ErrFenced):
		m.stats.fenced++
		if head != m.heads[ref] {
			rt.Fatalf("fenced commit of %s by %s at epoch %d changed the head to %q", ref, mn.n.ID(), epoch, head)
		}
		return
	case errors.Is(err, drivers.ErrUnavailable):
		m.stats.unavailable++
		// Outcome unknown: the head holds the old value or this one.
		if head == m.heads[ref] {
			return
		}
	default:
		rt.Fatalf("commit: %v", err)
	}
	if head != val {
		rt.Fatalf("commit of %q to %s returned %v, head is %q", val, ref, err, head)
	}
	// The owner key as of the commit's revision is the committer's, at
	// the epoch it committed under: no commit passes with a stale epoch.
	resp, gerr := m.cli.Get(context.Background(), keys{prefix: m.prefix}.owner(s), clientv3.WithRev(rev))
	if gerr != nil {
		rt.Fatal(gerr)
	}
	if len(resp.Kvs) == 0 || resp.Kvs[0].CreateRevision != epoch || NodeID(resp.Kvs[0].Value) != mn.n.ID() {
		rt.Fatalf("shard %d: %s committed at epoch %d (revision %d) while the owner key was %v", s, mn.n.ID(), epoch, rev, resp.Kvs)
	}
	if last := m.lastEpoch[s]; epoch < last {
		rt.Fatalf("shard %d: %s committed at epoch %d after a commit at epoch %d", s, mn.n.ID(), epoch, last)
	}
	if owner, ok := m.epochNode[epoch]; ok && owner != mn.n.ID() {
		rt.Fatalf("epoch %d: commits from %s and %s", epoch, owner, mn.n.ID())
	}
	m.lastEpoch[s], m.epochNode[epoch], m.heads[ref] = epoch, mn.n.ID(), val
}

// head reads ref's head and the revision that wrote it.
func (m *modelRun) head(rt *rapid.T, ref index.QueueRef) (string, int64) {
	resp, err := m.cli.Get(context.Background(), keys{prefix: m.prefix}.head("pool", ref))
	if err != nil {
		rt.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		return "", 0
	}
	return string(resp.Kvs[0].Value), resp.Kvs[0].ModRevision
}
