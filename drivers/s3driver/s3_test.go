package s3driver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"testing"

	"github.com/cistern-mq/cistern/drivers"
	"github.com/cistern-mq/cistern/drivers/drivertest"
)

// testBucket holds every test run, each under a fresh KeyPrefix.
const testBucket = "cistern-drivertest"

// backend is one real S3 store the tests run against, found through env
// vars that the named script prints.
type backend struct {
	name   string
	env    string // CISTERN_<env>_ENDPOINT, _ACCESS_KEY, _SECRET_KEY, _REGION
	script string
	// createOnly and pathKeys are what the probes must find there.
	createOnly drivers.CreateOnly
	pathKeys   bool
}

var (
	s3api = backend{"s3api", "S3", `eval "$(scripts/swift-aio.sh start)"`, drivers.CreateOnlyNone, false}
	vgw   = backend{"versitygw", "VGW", `eval "$(scripts/versitygw.sh start)"`, drivers.CreateOnlyAtomic, true}
)

// open connects to b under a fresh KeyPrefix, or skips (fails with
// CISTERN_REQUIRE_BACKENDS=1) when b's env vars are not set.
func (b backend) open(t testing.TB) *Store {
	t.Helper()
	get := func(v string) string { return os.Getenv("CISTERN_" + b.env + "_" + v) }
	if get("ENDPOINT") == "" || get("ACCESS_KEY") == "" || get("SECRET_KEY") == "" {
		msg := "CISTERN_" + b.env + "_{ENDPOINT,ACCESS_KEY,SECRET_KEY} not set; start " + b.name + " with: " + b.script
		if os.Getenv("CISTERN_REQUIRE_BACKENDS") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	rnd := make([]byte, 4)
	_, _ = rand.Read(rnd)
	cfg := Config{
		Endpoint:     get("ENDPOINT"),
		Region:       get("REGION"),
		Bucket:       testBucket,
		AccessKey:    get("ACCESS_KEY"),
		SecretKey:    get("SECRET_KEY"),
		PathStyle:    true,
		KeyPrefix:    "run-" + hex.EncodeToString(rnd) + "/",
		CreateBucket: true,
	}
	s, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New(%s): %v", b.name, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	for _, w := range s.Warnings() {
		t.Logf("warning: %s", w)
	}
	return s
}

func TestConformance(t *testing.T) {
	for _, b := range []backend{s3api, vgw} {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t)
			caps := s.Capabilities()
			if caps.CreateOnly != b.createOnly {
				t.Errorf("probe found create-only %s, want %s", caps.CreateOnly, b.createOnly)
			}
			if caps.CreateOnly == drivers.CreateOnlyNone && len(s.Warnings()) == 0 {
				t.Errorf("create-only none and no warning")
			}
			if s.pathKeys != b.pathKeys {
				t.Errorf("path probe found pathKeys %v, want %v", s.pathKeys, b.pathKeys)
			}
			drivertest.Run(t, s)
			t.Run("PutIntoMissingContainer", func(t *testing.T) { testPutIntoMissingContainer(t, s) })
			t.Run("EmptyObjectRange", func(t *testing.T) { testEmptyObjectRange(t, s) })
			t.Run("Nothing left behind", func(t *testing.T) { testNothingLeft(t, s) })
		})
	}
}

// testPutIntoMissingContainer pins the documented S3 behaviour: no request
// checks the container on put, so the put succeeds.
func testPutIntoMissingContainer(t *testing.T, s *Store) {
	ctx := context.Background()
	c := "dt-missing-" + hex.EncodeToString([]byte{1, 2, 3})
	if err := s.Put(ctx, c, "k", []byte("v"), nil); err != nil {
		t.Fatalf("Put into a missing container: %v (the S3 driver does not check containers on put)", err)
	}
	if err := s.Delete(ctx, c, "k"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.List(ctx, c, nil); !errors.Is(err, drivers.ErrNotFound) {
		t.Errorf("List of a container never created: %v, want ErrNotFound", err)
	}
}

// testEmptyObjectRange: S3 answers 416 to any range of an empty object;
// the contract reads nothing at offset 0.
func testEmptyObjectRange(t *testing.T, s *Store) {
	ctx := context.Background()
	c := drivertest.NewContainer(t, s)
	if err := s.Put(ctx, c, "empty", nil, nil); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, c, "empty", &drivers.GetOptions{Range: &drivers.Range{Offset: 0, Length: -1}})
	if err != nil || len(got) != 0 {
		t.Errorf("range 0- of an empty object: %q, %v; want empty, nil", got, err)
	}
	_, err = s.Get(ctx, c, "empty", &drivers.GetOptions{Range: &drivers.Range{Offset: 1, Length: 1}})
	if !errors.Is(err, drivers.ErrInvalid) {
		t.Errorf("range 1-1 of an empty object: %v, want ErrInvalid", err)
	}
	if err := s.Delete(ctx, c, "empty"); err != nil {
		t.Fatal(err)
	}
}

// testNothingLeft checks that the suite and the probe left no object under
// the run's KeyPrefix.
func testNothingLeft(t *testing.T, s *Store) {
	p, err := s.list(context.Background(), s.prefix, drivers.ListOptions{Limit: 10})
	if err != nil {
		t.Fatalf("list %s: %v", s.prefix, err)
	}
	if len(p.Objects) != 0 {
		t.Errorf("left behind under %s: %+v", s.prefix, p.Objects)
	}
}

func BenchmarkS3API(b *testing.B)   { drivertest.Bench(b, s3api.open(b)) }
func BenchmarkVersity(b *testing.B) { drivertest.Bench(b, vgw.open(b)) }
