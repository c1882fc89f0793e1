package server

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/cistern-mq/cistern/drivers"
	"github.com/cistern-mq/cistern/drivers/s3driver"
	"github.com/cistern-mq/cistern/drivers/swiftdriver"
)

// remoteStore opens one of the real stores that scripts/test.sh starts:
// Swift, S3 on Swift's s3api, or versitygw. Without its environment the
// test skips, or fails when CISTERN_REQUIRE_BACKENDS=1.
func remoteStore(t *testing.T, name string) drivers.Store {
	t.Helper()
	env := func(names ...string) []string {
		var v []string
		for _, n := range names {
			x := os.Getenv(n)
			if x == "" {
				msg := fmt.Sprintf("%s is not set: start the backends with scripts/swift-aio.sh and scripts/versitygw.sh", n)
				if os.Getenv("CISTERN_REQUIRE_BACKENDS") == "1" {
					t.Fatal(msg)
				}
				t.Skip(msg)
			}
			v = append(v, x)
		}
		return v
	}
	ctx := context.Background()
	run := time.Now().UnixNano()
	var s drivers.Store
	var err error
	switch name {
	case "swift":
		v := env("CISTERN_SWIFT_AUTH_URL", "CISTERN_SWIFT_USER", "CISTERN_SWIFT_KEY")
		s, err = swiftdriver.New(ctx, swiftdriver.Config{AuthURL: v[0], User: v[1], Key: v[2], ContainerPrefix: fmt.Sprintf("srv%d-", run)})
	case "s3api", "versitygw":
		prefix := map[string]string{"s3api": "CISTERN_S3", "versitygw": "CISTERN_VGW"}[name]
		v := env(prefix+"_ENDPOINT", prefix+"_ACCESS_KEY", prefix+"_SECRET_KEY")
		s, err = s3driver.New(ctx, s3driver.Config{Endpoint: v[0], AccessKey: v[1], SecretKey: v[2], Region: "us-east-1",
			PathStyle: true, Bucket: "cistern-server-test", CreateBucket: true, KeyPrefix: fmt.Sprintf("srv%d/", run)})
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
