package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestClusterConfig: the cluster settings from the file, the environment
// and the flags, their defaults, and a clear error for each bad value.
func TestClusterConfig(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Skip("no host name:", err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	yml := "listen: 127.0.0.1:7000\netcd:\n  endpoints: [http://127.0.0.1:2379, 'http://127.0.0.2:2379/']\n  lease_ttl: 3s\nnode_id: file-node\n"
	if err := os.WriteFile(file, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("etcd: {endpoints: [http://127.0.0.1:2379], lease_ttl: 500ms}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		args    []string
		env     map[string]string
		want    *ClusterConfig
		wantErr string
	}{
		{"single node by default", nil, nil, nil, ""},
		{"file", []string{"-config", file}, nil,
			&ClusterConfig{Endpoints: []string{"http://127.0.0.1:2379", "http://127.0.0.2:2379"}, NodeID: "file-node",
				Advertise: "http://127.0.0.1:7000", LeaseTTL: 3 * time.Second}, ""},
		{"env over file", []string{"-config", file},
			map[string]string{"CISTERN_ETCD": "http://10.0.0.1:2379 , http://10.0.0.2:2379", "CISTERN_NODE_ID": "env-node",
				"CISTERN_ADVERTISE": "http://10.0.0.5:7000/"},
			&ClusterConfig{Endpoints: []string{"http://10.0.0.1:2379", "http://10.0.0.2:2379"}, NodeID: "env-node",
				Advertise: "http://10.0.0.5:7000", LeaseTTL: 3 * time.Second}, ""},
		{"flags over env", []string{"-etcd", "https://e:2379", "-node-id", "flag-node", "-advertise", "https://n1:8888", "-listen", "0.0.0.0:8888"},
			map[string]string{"CISTERN_ETCD": "http://10.0.0.1:2379", "CISTERN_NODE_ID": "env-node"},
			&ClusterConfig{Endpoints: []string{"https://e:2379"}, NodeID: "flag-node", Advertise: "https://n1:8888", LeaseTTL: DefaultLeaseTTL}, ""},
		{"defaults", []string{"-etcd", "http://127.0.0.1:2379", "-listen", "127.0.0.1:8889"}, nil,
			&ClusterConfig{Endpoints: []string{"http://127.0.0.1:2379"}, NodeID: host + "-8889", Advertise: "http://127.0.0.1:8889", LeaseTTL: DefaultLeaseTTL}, ""},
		{"unspecified listen host", []string{"-etcd", "http://127.0.0.1:2379", "-listen", "0.0.0.0:8888"}, nil, nil,
			"-listen 0.0.0.0:8888 names no address other nodes can reach: set -advertise / CISTERN_ADVERTISE"},
		{"no listen host", []string{"-etcd", "http://127.0.0.1:2379", "-listen", ":8888"}, nil, nil, "set -advertise"},
		{"unspecified IPv6 listen host", []string{"-etcd", "http://127.0.0.1:2379", "-listen", "[::]:8888"}, nil, nil, "set -advertise"},
		{"endpoint without scheme", []string{"-etcd", "127.0.0.1:2379"}, nil, nil,
			`etcd endpoint "127.0.0.1:2379": not a URL: want a URL like http://127.0.0.1:2379`},
		{"endpoint of another scheme", []string{"-etcd", "unix://x"}, nil, nil, "the scheme is not http or https"},
		{"endpoint with a path", []string{"-etcd", "http://127.0.0.1:2379/v3"}, nil, nil, "only scheme, host and port"},
		{"bad advertise", []string{"-etcd", "http://127.0.0.1:2379", "-advertise", "node1:8888"}, nil, nil, `advertise "node1:8888"`},
		{"unspecified advertise", []string{"-etcd", "http://127.0.0.1:2379", "-advertise", "http://0.0.0.0:8888"}, nil, nil, "cannot reach an unspecified address"},
		{"lease below 1s", []string{"-config", bad}, nil, nil, "etcd.lease_ttl 500ms is below 1s"},
		{"node id with a space", []string{"-etcd", "http://127.0.0.1:2379", "-node-id", "a b"}, nil, nil, `node id "a b": ' ' is not allowed`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parseConfig(tc.args, env(tc.env))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.want == nil && cfg.Cluster != nil:
				t.Fatalf("cluster %+v, want none", cfg.Cluster)
			case tc.want != nil && (cfg.Cluster == nil || !slices.Equal(cfg.Cluster.Endpoints, tc.want.Endpoints) ||
				cfg.Cluster.NodeID != tc.want.NodeID || cfg.Cluster.Advertise != tc.want.Advertise || cfg.Cluster.LeaseTTL != tc.want.LeaseTTL):
				t.Fatalf("cluster %+v, want %+v", cfg.Cluster, tc.want)
			}
		})
	}
}

// TestClusterSettingsWithoutEtcd: a node id or advertise URL without etcd
// does nothing, and start-up says so.
func TestClusterSettingsWithoutEtcd(t *testing.T) {
	cfg, err := parseConfig([]string{"-node-id", "n1"}, env(map[string]string{"CISTERN_ADVERTISE": "http://x:1"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Cluster != nil || len(cfg.warnings) != 2 || !strings.Contains(cfg.warnings[0], "node_id (-node-id, CISTERN_NODE_ID) is ignored: no etcd endpoints") {
		t.Fatalf("cluster %+v, warnings %q", cfg.Cluster, cfg.warnings)
	}
}

// TestCheckConfigCluster: -check-config prints the resolved cluster
// settings, or says the node is single.
func TestCheckConfigCluster(t *testing.T) {
	data := filepath.Join(t.TempDir(), "d")
	var out strings.Builder
	if code := checkConfig(t.Context(), []string{"-check-config", "-data", data, "-etcd", "http://127.0.0.1:2379", "-node-id", "n1", "-listen", "127.0.0.1:9000"}, env(nil), &out); code != 0 {
		t.Fatalf("check-config: %d\n%s", code, &out)
	}
	if want := "# cluster: etcd http://127.0.0.1:2379, node id n1, advertise http://127.0.0.1:9000, lease_ttl 5s"; !strings.Contains(out.String(), want) {
		t.Fatalf("output lacks %q:\n%s", want, &out)
	}
	out.Reset()
	if code := checkConfig(t.Context(), []string{"-check-config", "-data", data}, env(nil), &out); code != 0 || !strings.Contains(out.String(), "# cluster: off (single node") {
		t.Fatalf("check-config single: %d\n%s", code, &out)
	}
}
