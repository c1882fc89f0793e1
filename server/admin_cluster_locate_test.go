package server

import (
	"encoding/json"
	"net/http/httptest"
	"testing"

	"github.com/rs/zerolog"
)

// TestQueuePoolInCluster: the admin route answers on any node: the owner
// says where the queue lives and that it serves it; another node names the
// owner instead of forwarding (the owner's public listener has no admin
// routes).
func TestQueuePoolInCluster(t *testing.T) {
	r := memRouter(t, false)
	fc := &fakeCluster{owner: map[string]string{}, def: "self"}
	srv, err := New(Options{Engine: r, Pools: r, Logger: zerolog.Nop(), Cluster: fc, NodeID: "node-a"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	admin := httptest.NewServer(srv.AdminHandler())
	t.Cleanup(admin.Close)
	if code, body := call(t, "PUT", admin.URL+"/v2/queues/q1", ""); code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	code, body := call(t, "GET", admin.URL+"/v2/queues/q1/pool", "")
	var got map[string]any
	if code != 200 || json.Unmarshal([]byte(body), &got) != nil || got["node"] != "node-a" || got["pool"] != "a" {
		t.Fatalf("owner: %d %s", code, body)
	}
	fc.setDefault("http://127.0.0.1:1")
	code, body = call(t, "GET", admin.URL+"/v2/queues/q1/pool", "")
	got = nil
	if code != 200 || json.Unmarshal([]byte(body), &got) != nil || got["owner"] != "http://127.0.0.1:1" || got["pool"] != nil {
		t.Fatalf("non-owner: %d %s", code, body)
	}
}
