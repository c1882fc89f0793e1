package etcdtest

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Restart keeps the endpoints and the data, and one client spans it.
func TestRestartKeepsData(t *testing.T) {
	e := Start(t)
	cli, err := clientv3.New(clientv3.Config{Endpoints: e.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx := context.Background()
	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	e.Stop()
	if e.Running() {
		t.Fatal("running after Stop")
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err = cli.Get(short, "k")
	cancel()
	if err == nil {
		t.Fatal("a read succeeded while etcd was stopped")
	}
	e.Restart()
	resp, err := cli.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v" {
		t.Fatalf("after restart: %v", resp.Kvs)
	}
}
