package swiftdriver

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/cistern-mq/cistern/drivers"
	"github.com/cistern-mq/cistern/drivers/drivertest"
)

// testPrefix keeps the tests' Swift containers apart from anything else in
// the account.
const testPrefix = "cistern-test-"

// swiftConfig reads the real Swift to test against from the environment
// that scripts/swift-aio.sh prints.
func swiftConfig(t testing.TB, prefix string) Config {
	t.Helper()
	cfg := Config{
		AuthURL:         os.Getenv("CISTERN_SWIFT_AUTH_URL"),
		User:            os.Getenv("CISTERN_SWIFT_USER"),
		Key:             os.Getenv("CISTERN_SWIFT_KEY"),
		ContainerPrefix: prefix,
	}
	if cfg.AuthURL == "" || cfg.User == "" || cfg.Key == "" {
		const msg = "no Swift to test against: start one with `eval \"$(scripts/swift-aio.sh start)\"`, which sets CISTERN_SWIFT_AUTH_URL, CISTERN_SWIFT_USER and CISTERN_SWIFT_KEY"
		if os.Getenv("CISTERN_REQUIRE_BACKENDS") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return cfg
}

// keystoneConfig reads the Keystone-authenticated Swift that
// `scripts/swift-aio.sh keystone-start` prints: a Keystone user and
// project, the storage URL found in Keystone's catalog.
func keystoneConfig(t testing.TB, prefix string) Config {
	t.Helper()
	cfg := Config{
		AuthURL:         os.Getenv("CISTERN_SWIFT_KEYSTONE_AUTH_URL"),
		User:            os.Getenv("CISTERN_SWIFT_KEYSTONE_USER"),
		Key:             os.Getenv("CISTERN_SWIFT_KEYSTONE_KEY"),
		Project:         os.Getenv("CISTERN_SWIFT_KEYSTONE_PROJECT"),
		UserDomain:      os.Getenv("CISTERN_SWIFT_KEYSTONE_DOMAIN"),
		Region:          os.Getenv("CISTERN_SWIFT_KEYSTONE_REGION"),
		ContainerPrefix: prefix,
	}
	if cfg.AuthURL == "" || cfg.User == "" || cfg.Key == "" || cfg.Project == "" {
		const msg = "no Keystone-authenticated Swift to test against: start one with `eval \"$(scripts/keystone.sh start)\"; eval \"$(scripts/swift-aio.sh start)\"; eval \"$(scripts/swift-aio.sh keystone-start)\"`, which sets the CISTERN_SWIFT_KEYSTONE_* variables"
		if os.Getenv("CISTERN_REQUIRE_BACKENDS") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return cfg
}

func newSwiftStore(t testing.TB, prefix string) *Store {
	t.Helper()
	return openStore(t, swiftConfig(t, prefix))
}

func openStore(t testing.TB, cfg Config) *Store {
	t.Helper()
	s, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	s := newSwiftStore(t, testPrefix)
	// What New's probes find on a stock Swift (measured, see the package
	// comment); a change here means the cluster or the probes changed.
	want := drivers.Capabilities{Driver: "swift", CreateOnly: drivers.CreateOnlyBestEffort, BatchDelete: true}
	if got := s.Capabilities(); got != want {
		t.Errorf("Capabilities() = %+v, want %+v", got, want)
	}
	drivertest.Run(t, s)
}

// TestConformanceKeystone runs the conformance suite against a Swift whose
// proxy authenticates with Keystone (authtoken + keystoneauth): the driver
// gets a Keystone v3 token and the storage URL from the catalog.
func TestConformanceKeystone(t *testing.T) {
	cfg := keystoneConfig(t, testPrefix)
	s := openStore(t, cfg)
	// the account is the project's, under Keystone's reseller prefix
	if u := s.conn.StorageUrl; !strings.Contains(u, "/v1/AUTH_") || strings.Contains(u, "AUTH_test") {
		t.Fatalf("storage URL %q: want the Keystone project's account from the catalog", u)
	}
	want := drivers.Capabilities{Driver: "swift", CreateOnly: drivers.CreateOnlyBestEffort, BatchDelete: true}
	if got := s.Capabilities(); got != want {
		t.Errorf("Capabilities() = %+v, want %+v", got, want)
	}
	drivertest.Run(t, s)
}

// TestKeystoneWrongPassword: Keystone's refusal is an error from New, not a
// store that fails later.
func TestKeystoneWrongPassword(t *testing.T) {
	cfg := keystoneConfig(t, testPrefix)
	cfg.Key += "-wrong"
	if s, err := New(context.Background(), cfg); err == nil {
		s.Close()
		t.Fatal("New with a wrong Keystone password succeeded")
	}
}

func BenchmarkStore(b *testing.B) {
	drivertest.Bench(b, newSwiftStore(b, testPrefix))
}

// TestProbeLeavesNothing: the probe object is gone after New, and the
// probe container, which stays, is never listed as a Cistern container.
func TestProbeLeavesNothing(t *testing.T) {
	ctx := context.Background()
	for _, prefix := range []string{"", testPrefix} {
		s := newSwiftStore(t, prefix)
		names, err := s.conn.ObjectNames(ctx, prefix+probeContainer, nil)
		if err != nil || len(names) != 0 {
			t.Errorf("prefix %q: probe container holds %q (%v), want nothing", prefix, names, err)
		}
		marker := ""
		for {
			p, err := s.ListContainers(ctx, &drivers.ListOptions{Marker: marker, Limit: 100})
			if err != nil {
				t.Fatalf("ListContainers: %v", err)
			}
			for _, o := range p.Objects {
				if drivers.ValidContainer(o.Key) != nil {
					t.Errorf("prefix %q: ListContainers returned %q, not a Cistern container name", prefix, o.Key)
				}
			}
			if p.Next == "" {
				break
			}
			marker = p.Next
		}
	}
}

// TestDeleteKeysOddNames: keys at the edges of Swift's bulk delete (all
// slashes, which it sorts with containers; too long once quoted, which
// make it refuse the whole request) are all deleted, and the container
// survives.
func TestDeleteKeysOddNames(t *testing.T) {
	ctx := context.Background()
	s := newSwiftStore(t, testPrefix)
	c := drivertest.NewContainer(t, s)
	keys := []string{"/", "//", "x/", " ", "new\nline", strings.Repeat("é", drivers.MaxKeyLen/2), strings.Repeat("%", drivers.MaxKeyLen), "plain"}
	for _, k := range keys {
		if err := s.Put(ctx, c, k, []byte("v"), nil); err != nil {
			t.Fatalf("Put(%.20q): %v", k, err)
		}
	}
	if err := s.DeleteKeys(ctx, c, keys); err != nil {
		t.Fatalf("DeleteKeys: %v", err)
	}
	p, err := s.List(ctx, c, nil)
	if err != nil {
		t.Fatalf("List after DeleteKeys: %v (the container must survive)", err)
	}
	if len(p.Objects) != 0 {
		var left []string
		for _, o := range p.Objects {
			left = append(left, o.Key)
		}
		t.Errorf("after DeleteKeys, left %q", left)
	}
}

// TestListPagesAtClusterLimit: a limit above what the cluster serves in one
// listing is cut to it, and the page still says where to go on.
func TestListPagesAtClusterLimit(t *testing.T) {
	ctx := context.Background()
	s := newSwiftStore(t, testPrefix)
	c := drivertest.NewContainer(t, s)
	for _, k := range []string{"a", "b", "c"} {
		if err := s.Put(ctx, c, k, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	s.listLimit = 2
	p, err := s.List(ctx, c, &drivers.ListOptions{Limit: 10})
	if err != nil || len(p.Objects) != 2 || p.Next != "b" {
		t.Fatalf("List = %+v, %v; want a, b and Next b", p, err)
	}
	p, err = s.List(ctx, c, &drivers.ListOptions{Limit: 10, Marker: p.Next})
	if err != nil || len(p.Objects) != 1 || p.Next != "" {
		t.Fatalf("second page = %+v, %v; want c alone", p, err)
	}
}

// TestCancelMidRequest: a context cancelled while a request is in flight
// surfaces as context.Canceled, not as an unavailable store.
func TestCancelMidRequest(t *testing.T) {
	s := newSwiftStore(t, testPrefix)
	c := drivertest.NewContainer(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	big := make([]byte, 32<<20)
	done := make(chan error, 1)
	go func() { done <- s.Put(ctx, c, "big", big, nil) }()
	cancel()
	err := <-done
	if err != nil && (!errors.Is(err, context.Canceled) || drivers.KindOf(err) != nil) {
		t.Errorf("Put cancelled in flight: %v, want context.Canceled and no kind", err)
	}
	// The key may or may not be there, depending on when the cancel hit.
	if err := s.Delete(context.Background(), c, "big"); err != nil {
		t.Error(err)
	}
}
