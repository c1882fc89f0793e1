package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/cistern-mq/cistern/cluster/etcdtest"
	"github.com/cistern-mq/cistern/placement"
)

// TestClusterStoreBinding: a node of another cluster (another etcd) does
// not start on a store a cluster served, and says why; a node of the same
// cluster does.
func TestClusterStoreBinding(t *testing.T) {
	data := t.TempDir()
	first, other := etcdtest.Start(t), etcdtest.Start(t)
	node := func(etcd *etcdtest.Etcd, id string) Config {
		cfg := testConfig(t, "-data", data, "-etcd", etcd.Endpoints()[0], "-node-id", id, "-advertise", "http://127.0.0.1:1")
		cfg.StartTimeout = 0
		return cfg
	}
	_, stop := serve(t, node(first, "a"))
	stop()
	_, stop = serve(t, node(first, "b"))
	stop()
	d, err := newDaemon(t.Context(), node(other, "c"), testLogger(&syncBuffer{}))
	if err == nil {
		d.close()
		t.Fatal("a node of another cluster started on the store")
	}
	if !errors.Is(err, placement.ErrClusterMismatch) || !strings.Contains(err.Error(), "another cluster") {
		t.Fatalf("another cluster: %v", err)
	}
}
