package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cistern-mq/cistern/cluster/etcdtest"
	"github.com/cistern-mq/cistern/drivers/drivertest"
	"github.com/cistern-mq/cistern/index"
	"github.com/cistern-mq/cistern/ring"
)

const testTTL = 2 * time.Second

// testCluster is one etcd and the nodes a test joins to it.
type testCluster struct {
	t      *testing.T
	etcd   *etcdtest.Etcd
	cli    *clientv3.Client
	prefix string
}

func newTestCluster(t *testing.T) *testCluster {
	t.Helper()
	e := etcdtest.Start(t)
	cli, err := clientv3.New(clientv3.Config{Endpoints: e.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return &testCluster{t: t, etcd: e, cli: cli, prefix: "/test/"}
}

func (c *testCluster) join(id string, mod func(*Options)) *Node {
	c.t.Helper()
	opts := Options{
		Endpoints:      c.etcd.Endpoints(),
		NodeID:         NodeID(id),
		Advertise:      "http://" + id + ".test",
		LeaseTTL:       testTTL,
		Prefix:         c.prefix,
		RequestTimeout: time.Second,
		Logger:         zerolog.New(zerolog.NewTestWriter(c.t)).Level(zerolog.DebugLevel).With().Timestamp().Logger(),
	}
	if mod != nil {
		mod(&opts)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := Join(ctx, opts)
	if err != nil {
		c.t.Fatalf("join %s: %v", id, err)
	}
	c.t.Cleanup(func() { n.Close() })
	return n
}

// owners reads every owner key from etcd: shard -> node.
func (c *testCluster) owners() map[Shard]NodeID {
	c.t.Helper()
	resp, err := c.cli.Get(context.Background(), c.prefix+"owners/", clientv3.WithPrefix())
	if err != nil {
		c.t.Fatal(err)
	}
	k := keys{prefix: c.prefix}
	out := map[Shard]NodeID{}
	for _, kv := range resp.Kvs {
		if kind, _, s := k.parse(string(kv.Key), 1<<DefaultPartPower); kind == keyOwner {
			out[s] = NodeID(kv.Value)
		}
	}
	return out
}

// settled reports whether every shard has an owner key naming one of
// nodes, each node holds what the keys say, and the counts are even
// (within one of 256/len(nodes)).
func (c *testCluster) settled(nodes ...*Node) bool {
	owners := c.owners()
	if len(owners) != 1<<DefaultPartPower {
		return false
	}
	count := map[NodeID]int{}
	for _, id := range owners {
		count[id]++
	}
	fair := (1 << DefaultPartPower) / len(nodes)
	for _, n := range nodes {
		if got := count[n.ID()]; got < fair || got > fair+1 || n.OwnedShards() != got {
			return false
		}
	}
	return len(count) == len(nodes)
}

// refsByShard returns one queue name falling in each shard.
func refsByShard(t *testing.T) []index.QueueRef {
	t.Helper()
	refs := make([]index.QueueRef, 1<<DefaultPartPower)
	found := 0
	for i := 0; found < len(refs); i++ {
		if i > 1_000_000 {
			t.Fatal("could not cover every shard")
		}
		q := fmt.Sprintf("q%d", i)
		s := ring.Partition(DefaultPartPower, "p", q)
		if refs[s].Name == "" {
			refs[s] = index.QueueRef{Project: "p", Name: q}
			found++
		}
	}
	return refs
}

func TestThreeNodesSplitShards(t *testing.T) {
	c := newTestCluster(t)
	a, b, d := c.join("a", nil), c.join("b", nil), c.join("c", nil)
	drivertest.Eventually(t, "three nodes share 256 shards evenly", func() bool { return c.settled(a, b, d) })

	// Every queue has exactly one node answering self, and the others
	// name it.
	owners := c.owners()
	for _, ref := range refsByShard(t)[:32] {
		var selves []NodeID
		var named []string
		for _, n := range []*Node{a, b, d} {
			self, url := n.Owner(ref.Project, ref.Name)
			if self {
				selves = append(selves, n.ID())
			} else {
				named = append(named, url)
			}
		}
		want := owners[a.shardOf(ref.Project, ref.Name)]
		if len(selves) != 1 || selves[0] != want {
			t.Fatalf("%s: self on %v, owner key names %s", ref, selves, want)
		}
		for _, u := range named {
			if u != "http://"+string(want)+".test" {
				t.Fatalf("%s: a non-owner names %q, owner is %s", ref, u, want)
			}
		}
	}
	st := a.Status()
	if len(st.Members) != 3 || st.Unowned != 0 || st.Self != "a" {
		t.Fatalf("status %+v", st)
	}
}

func TestFourthNodeMovesFairShare(t *testing.T) {
	c := newTestCluster(t)
	a, b, d := c.join("a", nil), c.join("b", nil), c.join("c", nil)
	drivertest.Eventually(t, "three nodes settle", func() bool { return c.settled(a, b, d) })
	before := c.owners()
	e := c.join("d", nil)
	drivertest.Eventually(t, "four nodes settle", func() bool { return c.settled(a, b, d, e) })
	after := c.owners()
	moved := 0
	for s, id := range after {
		if before[s] != id {
			moved++
			if id != "d" {
				t.Errorf("shard %d moved from %s to %s, not to the new node", s, before[s], id)
			}
		}
	}
	if moved > 64+1 {
		t.Fatalf("%d shards moved for a fair share of 64", moved)
	}
}

func TestClosedNodeShardsMove(t *testing.T) {
	c := newTestCluster(t)
	a, b, d := c.join("a", nil), c.join("b", nil), c.join("c", nil)
	drivertest.Eventually(t, "three nodes settle", func() bool { return c.settled(a, b, d) })
	start := time.Now()
	d.Close() // no handoff: its keys stay until its lease expires
	drivertest.Eventually(t, "two nodes own everything", func() bool { return c.settled(a, b) })
	t.Logf("shards of a closed node moved after %v (lease %v)", time.Since(start), testTTL)
}

func TestLeaveReleasesBeforeDelete(t *testing.T) {
	c := newTestCluster(t)
	refs := refsByShard(t)
	var mu sync.Mutex
	released := map[Shard]bool{}
	var bad []string
	release := func(ctx context.Context, match func(index.QueueRef) bool) error {
		owners := c.owners()
		mu.Lock()
		defer mu.Unlock()
		for s, ref := range refs {
			if !match(ref) {
				continue
			}
			released[Shard(s)] = true
			if owners[Shard(s)] != "c" {
				bad = append(bad, fmt.Sprintf("shard %d released while its key names %q", s, owners[Shard(s)]))
			}
		}
		return nil
	}
	a, b := c.join("a", nil), c.join("b", nil)
	d := c.join("c", func(o *Options) { o.Release = release })
	drivertest.Eventually(t, "three nodes settle", func() bool { return c.settled(a, b, d) })
	var held []Shard
	for s, id := range c.owners() {
		if id == "c" {
			held = append(held, s)
		}
	}
	if err := d.Leave(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	for _, s := range held {
		if !released[s] {
			t.Errorf("shard %d handed off without Release", s)
		}
	}
	for _, msg := range bad {
		t.Error(msg)
	}
	mu.Unlock()
	if got := testutil.ToFloat64(d.m.changes.WithLabelValues(changeReleased)); int(got) != len(held) {
		t.Errorf("released counter %v, held %d", got, len(held))
	}
	drivertest.Eventually(t, "the others own everything", func() bool { return c.settled(a, b) })
}

func TestStatusAndMetrics(t *testing.T) {
	c := newTestCluster(t)
	reg := prometheus.NewRegistry()
	a := c.join("a", func(o *Options) { o.Registry = reg })
	b := c.join("b", nil)
	drivertest.Eventually(t, "two nodes settle", func() bool { return c.settled(a, b) })
	data, err := json.Marshal(a.Members())
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Self    string `json:"self"`
		Members []struct {
			ID        string `json:"id"`
			Advertise string `json:"advertise"`
			Shards    int    `json:"shards"`
		} `json:"members"`
	}
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatal(err)
	}
	if st.Self != "a" || len(st.Members) != 2 || st.Members[1].Advertise != "http://b.test" || st.Members[0].Shards+st.Members[1].Shards != 256 {
		t.Fatalf("members: %s", data)
	}
	want := map[string]float64{
		"cistern_cluster_members":      2,
		"cistern_cluster_owned_shards": float64(a.OwnedShards()),
		"cistern_cluster_lease_fresh":  1,
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range families {
		seen[f.GetName()] = true
		if v, ok := want[f.GetName()]; ok && f.GetMetric()[0].GetGauge().GetValue() != v {
			t.Errorf("%s = %v, want %v", f.GetName(), f.GetMetric()[0].GetGauge().GetValue(), v)
		}
	}
	for _, name := range []string{"cistern_cluster_ownership_changes_total", "cistern_etcd_request_seconds", "cistern_etcd_commit_txns_total", "cistern_etcd_commit_ops_total", "cistern_cluster_members"} {
		if !seen[name] {
			t.Errorf("metric %s not registered", name)
		}
	}
}

// A node restarted under the same id (kill -9, then start) takes its shards
// back at once, instead of waiting for its old lease to expire: the old
// keys are its own, and deleting them fences whatever the old process
// might still do.
func TestRestartedNodeReclaimsOwnKeys(t *testing.T) {
	c := newTestCluster(t)
	long := func(o *Options) { o.LeaseTTL = time.Minute } // longer than Eventually waits
	old := c.join("a", long)
	drivertest.Eventually(t, "a owns everything", func() bool { return c.settled(old) })
	ref, epoch := ownedRef(t, old)
	old.Pause(true) // a stand-in for the dead process, fenced below
	old.checkLocally = false
	restarted := c.join("a", long)
	drivertest.Eventually(t, "the restarted a owns everything", func() bool { return c.settled(restarted) })
	if err := old.Fence("p1").Commit(context.Background(), ref, epoch, []byte("zombie")); !errors.Is(err, index.ErrFenced) {
		t.Fatalf("the old process's commit: %v, want ErrFenced", err)
	}
}
