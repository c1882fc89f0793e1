package server

import (
	"fmt"
	"testing"
	"time"

	"github.com/cistern-mq/cistern/cluster/etcdtest"
	"github.com/cistern-mq/cistern/drivers/drivertest"
	"github.com/cistern-mq/cistern/server/wire"
)

// TestE2EThroughCluster runs the API end-to-end tests through three nodes
// of a cluster on one store (issue 10: "the API e2e suite passes through
// any node"): one real etcd for the whole suite, a cluster of its own (its
// own etcd prefix and store) for each test, and a front that sends each
// request to the next node, so that most are forwarded to the queue's
// owner. The tests are the single node's, unchanged: a client sees one
// service whichever node it reaches. Left out: the tests of one server's
// internals (its options, error mapper, metrics handler), the forwarding
// tests, which play the cluster themselves, and the keystone tests, whose
// servers stand over a placement router of their own, not newEnv.
func TestE2EThroughCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and three nodes per test")
	}
	etcd := etcdtest.Start(t)
	t.Setenv(clusterEtcdEnv, etcd.Endpoints()[0])
	for _, c := range []struct {
		name string
		test func(*testing.T)
	}{
		{"Spread", testClusterSpread},
		{"HeaderRules", TestHeaderRules},
		{"Queues", TestQueues},
		{"Messages", TestMessages},
		{"ConcurrentClaims", TestConcurrentClaims},
		{"PostMessageCount", TestPostMessageCount},
		{"DotQueueNames", TestDotQueueNames},
		{"DeadLetterQueueName", TestDeadLetterQueueName},
		{"SignedURLLiteralPaths", TestSignedURLLiteralPaths},
		{"SignedURLs", TestSignedURLs},
		{"WireExamples", TestWireExamples},
		{"Gophercloud", TestGophercloud},
		{"ZaqarClient", TestZaqarClient},
		{"BodyLimits", TestBodyLimits},
		{"ProjectIDRules", TestProjectIDRules},
		{"RepeatedIdentityHeaders", TestRepeatedIdentityHeaders},
		// The store failing under all three nodes at once.
		{"StoreFaults", TestStoreFaults},
		{"FaultStoreFullAndDown", TestFaultStoreFullAndDown},
		{"FaultRejectedBodyNeverServed", TestFaultRejectedBodyNeverServed},
		{"RequestTimeoutHungStore", TestRequestTimeoutHungStore},
	} {
		t.Run(c.name, c.test)
	}
}

// testClusterSpread checks that the cluster env is one: requests for
// queues of every node reach their owners (most through a forward), and a
// message moved to a dead-letter queue another node owns arrives there,
// once.
func testClusterSpread(t *testing.T) {
	e := newEnv(t, envOpts{})
	if e.members == nil {
		t.Fatal("not a cluster env")
	}
	// A queue owned by each node, and a dead-letter queue owned by another.
	owned := map[int]string{}
	ownerOf := func(q string) int {
		for i, m := range e.members {
			if self, _ := m.node.Owner(project, q); self {
				return i
			}
		}
		return -1
	}
	for i := 0; len(owned) < len(e.members); i++ {
		q := fmt.Sprintf("q%d", i)
		if o := ownerOf(q); o >= 0 && owned[o] == "" {
			owned[o] = q
		}
	}
	src, dlq := owned[0], owned[1]
	for i := range e.members {
		q, meta := owned[i], ""
		if q == src {
			meta = `{"_max_claim_count": 1, "_dead_letter_queue": "` + dlq + `", "_dead_letter_queue_messages_ttl": 600}`
		}
		e.must(req{method: "PUT", path: "/v2/queues/" + q, body: meta}, 201)
		e.must(req{method: "POST", path: "/v2/queues/" + q + "/messages", body: `{"messages": [{"body": "` + q + `"}]}`}, 201)
	}
	ok := 0
	for i, m := range e.members {
		if m.eng.Loaded() != 1 {
			t.Errorf("node %d has %d queues loaded, want its own 1", i, m.eng.Loaded())
		}
		ok += forwarded(m.srv, "ok")
	}
	if ok < 2*len(e.members)/3 {
		t.Errorf("%d requests forwarded of %d", ok, 2*len(e.members))
	}

	e.must(req{method: "POST", path: "/v2/queues/" + src + "/claims", body: `{"ttl": 60, "grace": 60}`}, 201)
	e.clk.Advance(61 * time.Second)
	// The next claim finds the message claimed its maximum: it moves.
	e.must(req{method: "POST", path: "/v2/queues/" + src + "/claims", body: `{"ttl": 60, "grace": 60}`}, 204)
	var l wire.MessageList
	drivertest.Eventually(t, "the message in the dead-letter queue on the other node", func() bool {
		e.must(req{method: "GET", path: "/v2/queues/" + dlq + "/messages?echo=true"}, 200).decode(t, &l)
		return len(l.Messages) == 2
	})
	if string(l.Messages[1].Body) != `"`+src+`"` || l.Messages[1].TTL != 600 {
		t.Fatalf("dead-letter queue %s holds %+v", dlq, l.Messages)
	}
	e.must(req{method: "GET", path: "/v2/queues/" + src + "/messages?echo=true&include_claimed=true"}, 200).decode(t, &l)
	if len(l.Messages) != 0 {
		t.Fatalf("moved message still in %s: %+v", src, l.Messages)
	}
}
