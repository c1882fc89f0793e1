package enginetest

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/cistern-mq/cistern/cluster/etcdtest"
	"github.com/cistern-mq/cistern/drivers"
	"github.com/cistern-mq/cistern/drivers/fsdriver"
	"github.com/cistern-mq/cistern/drivers/memdriver"
	"github.com/cistern-mq/cistern/drivers/s3driver"
	"github.com/cistern-mq/cistern/drivers/swiftdriver"
)

func TestMem(t *testing.T) { Run(t, memdriver.New(), false) }

func TestFS(t *testing.T) {
	s, err := fsdriver.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	Run(t, s, false)
}

// backend returns the value of each env var, or skips (fails when
// CISTERN_REQUIRE_BACKENDS=1) when one is unset.
func backend(t *testing.T, script string, names ...string) []string {
	t.Helper()
	var vals []string
	for _, n := range names {
		v := os.Getenv(n)
		if v == "" {
			msg := fmt.Sprintf("%s is not set: start the backend with `eval \"$(scripts/%s start)\"`", n, script)
			if os.Getenv("CISTERN_REQUIRE_BACKENDS") == "1" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
		vals = append(vals, v)
	}
	return vals
}

func TestSwift(t *testing.T) {
	v := backend(t, "swift-aio.sh", "CISTERN_SWIFT_AUTH_URL", "CISTERN_SWIFT_USER", "CISTERN_SWIFT_KEY")
	s, err := swiftdriver.New(context.Background(), swiftdriver.Config{AuthURL: v[0], User: v[1], Key: v[2],
		ContainerPrefix: fmt.Sprintf("et%d-", time.Now().UnixNano())})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	Run(t, s, true)
}

func s3Store(t *testing.T, script, prefix string) drivers.Store {
	v := backend(t, script, prefix+"_ENDPOINT", prefix+"_ACCESS_KEY", prefix+"_SECRET_KEY")
	s, err := s3driver.New(context.Background(), s3driver.Config{Endpoint: v[0], AccessKey: v[1], SecretKey: v[2],
		Region: "us-east-1", PathStyle: true, Bucket: "cistern-enginetest", CreateBucket: true,
		KeyPrefix: fmt.Sprintf("et%d/", time.Now().UnixNano())})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestS3API runs on Swift's s3api, which refuses conditional writes.
func TestS3API(t *testing.T) { Run(t, s3Store(t, "swift-aio.sh", "CISTERN_S3"), true) }

// TestVersity runs on an S3 server that enforces them.
func TestVersity(t *testing.T) { Run(t, s3Store(t, "versitygw.sh", "CISTERN_VGW"), true) }

// TestClusterFS runs the scenarios through three nodes of a cluster on one
// fs folder, each node with its own shared handle on it, as cluster mode
// opens a folder (cmd/cistern).
func TestClusterFS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and three nodes per scenario")
	}
	dir := t.TempDir()
	stores := make([]drivers.Store, 3)
	for i := range stores {
		s, err := fsdriver.NewShared(dir)
		if err != nil {
			t.Fatal(err)
		}
		stores[i] = s
	}
	RunCluster(t, etcdtest.Start(t).Endpoints(), stores, false)
}

// TestClusterSwift runs them through three nodes on the real Swift, each
// with its own client.
func TestClusterSwift(t *testing.T) {
	v := backend(t, "swift-aio.sh", "CISTERN_SWIFT_AUTH_URL", "CISTERN_SWIFT_USER", "CISTERN_SWIFT_KEY")
	prefix := fmt.Sprintf("etc%d-", time.Now().UnixNano())
	stores := make([]drivers.Store, 3)
	for i := range stores {
		s, err := swiftdriver.New(context.Background(), swiftdriver.Config{AuthURL: v[0], User: v[1], Key: v[2], ContainerPrefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores[i] = s
	}
	RunCluster(t, etcdtest.Start(t).Endpoints(), stores, true)
}
