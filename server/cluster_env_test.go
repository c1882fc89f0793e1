package server

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cistern-mq/cistern/cluster"
	"github.com/cistern-mq/cistern/drivers"
	"github.com/cistern-mq/cistern/drivers/drivertest"
	"github.com/cistern-mq/cistern/drivers/fsdriver"
	"github.com/cistern-mq/cistern/index"
	"github.com/cistern-mq/cistern/index/enginetest"
	"github.com/cistern-mq/cistern/notify"
)

// clusterEtcdEnv, when set to an etcd client URL, makes newEnv build a
// cluster of three nodes instead of one server (newClusterEnv): the API
// tests then run through the cluster unchanged. TestE2EThroughCluster sets
// it around the suite; it can also be set by hand to run any test of this
// package through three nodes on an etcd already running.
const clusterEtcdEnv = "CISTERN_TEST_CLUSTER_ETCD"

// clusterNodes is how many nodes a cluster env runs.
const clusterNodes = 3

// clusterPool names the one pool the nodes share (the heads' etcd keys).
const clusterPool = "default"

// clusterLeaseTTL is the nodes' lease: short, so that a node of an earlier
// test that died uncleanly cannot hold shards for long; the prefixes keep
// tests apart anyway.
const clusterLeaseTTL = 3 * time.Second

// clusterMember is one node of a cluster env: its membership, engine and
// server, listening on 127.0.0.1.
type clusterMember struct {
	node *cluster.Node
	eng  *index.Engine
	srv  *Server
	http *httptest.Server
}

// newClusterEnv is newEnv in cluster mode: three real cluster nodes on the
// etcd at endpoint (under a prefix of their own), three engines on one
// shared store, three servers each advertising its own URL, and in front
// a balancer that sends each request to the next node in turn, so that
// two requests in three are forwarded to the queue's owner. The engines
// and the servers share the env's clock; e.eng and e.srv are the first
// node's.
func newClusterEnv(t testing.TB, o envOpts, endpoint string) *env {
	t.Helper()
	e := &env{t: t, clk: enginetest.NewClock(), store: o.store}
	prefix := fmt.Sprintf("/e2e/%d/", time.Now().UnixNano())
	dir := t.TempDir()
	stores := make([]drivers.Store, clusterNodes)
	for i := range stores {
		if e.store != nil {
			stores[i] = e.store
			continue
		}
		st, err := fsdriver.NewShared(dir)
		if err != nil {
			t.Fatal(err)
		}
		stores[i] = st
	}
	if e.store == nil {
		e.store = stores[0]
	}
	members := make([]*clusterMember, clusterNodes)
	// Stopped in this order when the test ends: the front, then each
	// node's listener, server, membership (no handoff: the keys expire
	// with the lease, and the prefix is this test's alone) and engine.
	var front *httptest.Server
	t.Cleanup(func() {
		if front != nil {
			front.Close()
		}
		for _, m := range members {
			if m == nil {
				continue
			}
			if m.http != nil {
				m.http.Close()
			}
			if m.srv != nil {
				m.srv.Close()
			}
			if m.node != nil {
				m.node.Close()
			}
			if m.eng != nil {
				m.eng.Close()
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range members {
		m := &clusterMember{}
		members[i] = m
		// The listener first, so that the node advertises the URL it
		// serves on.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		m.http = httptest.NewUnstartedServer(nil)
		m.http.Listener.Close()
		m.http.Listener = ln
		advertise := "http://" + ln.Addr().String()
		id := fmt.Sprintf("node-%d", i)
		// The node joins before the engine opens; its Release reaches the
		// engine once there is one.
		var eng atomic.Pointer[index.Engine]
		m.node, err = cluster.Join(ctx, cluster.Options{
			Endpoints: []string{endpoint},
			NodeID:    cluster.NodeID(id),
			Advertise: advertise,
			LeaseTTL:  clusterLeaseTTL,
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
			t.Fatalf("join %s: %v", id, err)
		}
		io := index.Options{Store: stores[i], Logger: zerolog.Nop(), NoJanitor: true, Fence: m.node.Fence(clusterPool)}
		if !o.real {
			io.Clock = e.clk
		}
		if m.eng, err = index.Open(ctx, io); err != nil {
			t.Fatal(err)
		}
		eng.Store(m.eng)
		secret, err := m.node.Secret(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Moves to a dead-letter queue another node owns go to it, as
		// cmd/cistern wires them.
		dead := cluster.NewDeadLetters(m.node, m.eng, secret)
		m.eng.SetDeadLetters(dead)
		so := Options{Engine: m.eng, Logger: zerolog.Nop(), SharedSecret: "test-secret", Cluster: m.node, NodeID: id}
		if !o.real {
			so.Clock = e.clk.Now
		}
		if so.Subscriptions, err = notify.NewStore(ctx, stores[i], so.Clock); err != nil {
			t.Fatal(err)
		}
		if o.server != nil {
			o.server(&so)
		}
		if m.srv, err = New(so); err != nil {
			t.Fatal(err)
		}
		mux := http.NewServeMux()
		mux.Handle(cluster.DeadLetterPath, dead.Handler())
		mux.Handle("/", m.srv.Handler())
		m.http.Config.Handler = mux
		m.http.Start()
	}
	drivertest.Eventually(t, "every shard owned, by all three nodes", func() bool {
		owned := 0
		for _, m := range members {
			st := m.node.Status()
			if st.Unowned != 0 || len(st.Members) != clusterNodes {
				return false
			}
			for _, ms := range st.Members {
				if ms.Shards == 0 {
					return false
				}
			}
			owned += m.node.OwnedShards()
		}
		return owned == members[0].node.Status().Shards
	})
	// The front: each request to the next node, as a round-robin load
	// balancer would, Host and all.
	var next atomic.Uint64
	proxies := make([]*httputil.ReverseProxy, len(members))
	for i, m := range members {
		target, err := url.Parse(m.http.URL)
		if err != nil {
			t.Fatal(err)
		}
		proxies[i] = &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host
		}}
	}
	front = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxies[next.Add(1)%uint64(len(proxies))].ServeHTTP(w, r)
	}))
	e.url = front.URL
	e.http = front.Client()
	e.eng, e.srv = members[0].eng, members[0].srv
	e.members = members
	return e
}

// clusterEndpoint is the etcd that newEnv builds clusters on, "" for a
// single node (see clusterEtcdEnv).
func clusterEndpoint() string { return os.Getenv(clusterEtcdEnv) }
