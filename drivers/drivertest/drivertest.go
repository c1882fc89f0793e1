// Package drivertest is the conformance suite every drivers.Store passes, in
// the spirit of gocloud.dev's drivertest: one body of tests, run by each
// driver's own test against a real instance of its store.
package drivertest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cistern-mq/cistern/drivers"
)

// Run runs the whole conformance suite against s. The store must be empty of
// containers named "dt-*" that it did not create (each case makes its own
// container with a random name and removes it).
func Run(t *testing.T, s drivers.Store) {
	t.Helper()
	caps := s.Capabilities()
	t.Logf("driver %s: create-only %s, consistent list %v, batch delete %v",
		caps.Driver, caps.CreateOnly, caps.ConsistentList, caps.BatchDelete)
	t.Run("Containers", func(t *testing.T) { testContainers(t, s) })
	t.Run("NotFound", func(t *testing.T) { testNotFound(t, s) })
	t.Run("DeleteIdempotent", func(t *testing.T) { testDeleteIdempotent(t, s) })
	t.Run("RoundTrip", func(t *testing.T) { testRoundTrip(t, s) })
	t.Run("Ranges", func(t *testing.T) { testRanges(t, s) })
	t.Run("List", func(t *testing.T) { testList(t, s) })
	t.Run("AwkwardKeys", func(t *testing.T) { testAwkwardKeys(t, s) })
	t.Run("InvalidNames", func(t *testing.T) { testInvalidNames(t, s) })
	t.Run("CancelledContext", func(t *testing.T) { testCancelled(t, s) })
	t.Run("DeleteMany", func(t *testing.T) { testDeleteMany(t, s) })
	t.Run("CreateOnly", func(t *testing.T) { testCreateOnly(t, s) })
	t.Run("CreateOnlyRace", func(t *testing.T) { testCreateOnlyRace(t, s) })
}

// NewContainer creates a container with a random name for one test and
// removes it, with everything in it, when the test ends.
func NewContainer(t testing.TB, s drivers.Store) string {
	t.Helper()
	name := "dt-" + randHex(6)
	ctx := context.Background()
	if err := s.CreateContainer(ctx, name); err != nil {
		t.Fatalf("CreateContainer(%q): %v", name, err)
	}
	t.Cleanup(func() { Empty(t, s, name) })
	return name
}

// Empty deletes every object in container, then the container.
func Empty(t testing.TB, s drivers.Store, container string) {
	t.Helper()
	ctx := context.Background()
	for {
		p, err := s.List(ctx, container, &drivers.ListOptions{Limit: 1000})
		if errors.Is(err, drivers.ErrNotFound) {
			return
		}
		if err != nil {
			t.Errorf("cleanup: List(%q): %v", container, err)
			return
		}
		if len(p.Objects) == 0 {
			break
		}
		keys := make([]string, len(p.Objects))
		for i, o := range p.Objects {
			keys[i] = o.Key
		}
		if err := drivers.DeleteMany(ctx, s, container, keys); err != nil {
			t.Errorf("cleanup: DeleteMany: %v", err)
			return
		}
	}
	if err := s.DeleteContainer(ctx, container); err != nil {
		t.Errorf("cleanup: DeleteContainer(%q): %v", container, err)
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func mustPut(t testing.TB, s drivers.Store, c, k string, data []byte) {
	t.Helper()
	if err := s.Put(context.Background(), c, k, data, nil); err != nil {
		t.Fatalf("Put(%q, %q): %v", c, k, err)
	}
}

func mustGet(t testing.TB, s drivers.Store, c, k string) []byte {
	t.Helper()
	b, err := s.Get(context.Background(), c, k, nil)
	if err != nil {
		t.Fatalf("Get(%q, %q): %v", c, k, err)
	}
	return b
}

func wantKind(t testing.TB, what string, err, kind error) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Errorf("%s: got error %v, want %v", what, err, kind)
	}
}

// listAll lists every key under prefix, one page of limit at a time.
func listAll(t testing.TB, s drivers.Store, c, prefix, marker string, limit int) []string {
	t.Helper()
	var keys []string
	for i := 0; ; i++ {
		if i > 100000 {
			t.Fatalf("List: no end after %d pages", i)
		}
		p, err := s.List(context.Background(), c, &drivers.ListOptions{Prefix: prefix, Marker: marker, Limit: limit})
		if err != nil {
			t.Fatalf("List(%q, prefix %q, marker %q): %v", c, prefix, marker, err)
		}
		if len(p.Objects) > limit {
			t.Fatalf("List returned %d keys, over the limit %d", len(p.Objects), limit)
		}
		for _, o := range p.Objects {
			keys = append(keys, o.Key)
		}
		if p.Next == "" {
			return keys
		}
		if p.Next <= marker {
			t.Fatalf("List: next marker %q does not advance past %q", p.Next, marker)
		}
		marker = p.Next
	}
}

func testContainers(t *testing.T, s drivers.Store) {
	ctx := context.Background()
	name := "dt-" + randHex(6)
	if err := s.CreateContainer(ctx, name); err != nil {
		t.Fatalf("CreateContainer: %v", err)
	}
	t.Cleanup(func() { Empty(t, s, name) })
	if err := s.CreateContainer(ctx, name); err != nil {
		t.Errorf("second CreateContainer: %v, want nil", err)
	}
	found := false
	marker := ""
	for {
		p, err := s.ListContainers(ctx, &drivers.ListOptions{Prefix: "dt-", Marker: marker, Limit: 50})
		if err != nil {
			t.Fatalf("ListContainers: %v", err)
		}
		for _, o := range p.Objects {
			if !strings.HasPrefix(o.Key, "dt-") {
				t.Errorf("ListContainers prefix dt- returned %q", o.Key)
			}
			if o.Key <= marker {
				t.Errorf("ListContainers out of order: %q after %q", o.Key, marker)
			}
			marker = o.Key
			found = found || o.Key == name
		}
		if p.Next == "" {
			break
		}
		marker = p.Next
	}
	if !found {
		t.Errorf("ListContainers did not list %q", name)
	}
	mustPut(t, s, name, "k", []byte("v"))
	wantKind(t, "DeleteContainer of a non-empty container", s.DeleteContainer(ctx, name), drivers.ErrPreconditionFailed)
	if err := s.Delete(ctx, name, "k"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if err := s.DeleteContainer(ctx, name); err != nil {
		t.Fatalf("DeleteContainer of an empty container: %v", err)
	}
	if err := s.DeleteContainer(ctx, name); err != nil {
		t.Errorf("DeleteContainer of a missing container: %v, want nil", err)
	}
	_, err := s.Get(ctx, name, "k", nil)
	wantKind(t, "Get in a deleted container", err, drivers.ErrNotFound)
	_, err = s.List(ctx, name, nil)
	wantKind(t, "List of a deleted container", err, drivers.ErrNotFound)
}

func testNotFound(t *testing.T, s drivers.Store) {
	ctx := context.Background()
	c := NewContainer(t, s)
	_, err := s.Get(ctx, c, "missing", nil)
	wantKind(t, "Get missing", err, drivers.ErrNotFound)
	_, err = s.Get(ctx, c, "missing", &drivers.GetOptions{Range: &drivers.Range{Offset: 0, Length: 1}})
	wantKind(t, "ranged Get missing", err, drivers.ErrNotFound)
	_, err = s.Head(ctx, c, "missing")
	wantKind(t, "Head missing", err, drivers.ErrNotFound)
	_, err = s.Get(ctx, "dt-none-"+randHex(4), "k", nil)
	wantKind(t, "Get in a missing container", err, drivers.ErrNotFound)
	p, err := s.List(ctx, c, &drivers.ListOptions{Prefix: "nothing/"})
	if err != nil || len(p.Objects) != 0 || p.Next != "" {
		t.Errorf("List of an empty prefix = %+v, %v; want empty, nil", p, err)
	}
}

func testDeleteIdempotent(t *testing.T, s drivers.Store) {
	ctx := context.Background()
	c := NewContainer(t, s)
	if err := s.Delete(ctx, c, "never-was"); err != nil {
		t.Errorf("Delete of a missing key: %v", err)
	}
	mustPut(t, s, c, "k", []byte("x"))
	for i := range 2 {
		if err := s.Delete(ctx, c, "k"); err != nil {
			t.Errorf("Delete #%d: %v", i+1, err)
		}
	}
	_, err := s.Get(ctx, c, "k", nil)
	wantKind(t, "Get after Delete", err, drivers.ErrNotFound)
}

func testRoundTrip(t *testing.T, s drivers.Store) {
	ctx := context.Background()
	c := NewContainer(t, s)
	allBytes := make([]byte, 256)
	for i := range allBytes {
		allBytes[i] = byte(i)
	}
	big := make([]byte, 5<<20)
	_, _ = rand.Read(big)
	cases := []struct {
		name string
		data []byte
	}{
		{"empty", []byte{}},
		{"one byte", []byte("x")},
		{"all bytes", allBytes},
		{"json", []byte(`{"body":{"event":"x"},"ttl":300}`)},
		{"5 MiB", big},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			key := "rt/" + strings.ReplaceAll(tc.name, " ", "-")
			mustPut(t, s, c, key, tc.data)
			got := mustGet(t, s, c, key)
			if !bytes.Equal(got, tc.data) {
				t.Errorf("Get returned %d bytes, want %d (equal: false)", len(got), len(tc.data))
			}
			a, err := s.Head(ctx, c, key)
			if err != nil {
				t.Fatalf("Head: %v", err)
			}
			if a.Size != int64(len(tc.data)) {
				t.Errorf("Head size %d, want %d", a.Size, len(tc.data))
			}
		})
	}
	mustPut(t, s, c, "over", []byte("first, longer value"))
	mustPut(t, s, c, "over", []byte("second"))
	if got := mustGet(t, s, c, "over"); string(got) != "second" {
		t.Errorf("overwrite: got %q, want %q", got, "second")
	}
}

func testRanges(t *testing.T, s drivers.Store) {
	ctx := context.Background()
	c := NewContainer(t, s)
	data := []byte("0123456789abcdefghij")
	mustPut(t, s, c, "r", data)
	cases := []struct {
		name        string
		off, length int64
		want        string
		kind        error
	}{
		{"start", 0, 4, "0123", nil},
		{"middle", 5, 3, "567", nil},
		{"to end", 15, -1, "fghij", nil},
		{"past end clipped", 18, 10, "ij", nil},
		{"last byte", 19, 1, "j", nil},
		{"whole", 0, -1, string(data), nil},
		{"at end", 20, 1, "", drivers.ErrInvalid},
		{"past end", 100, -1, "", drivers.ErrInvalid},
		{"zero length", 0, 0, "", drivers.ErrInvalid},
		{"negative offset", -1, 2, "", drivers.ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Get(ctx, c, "r", &drivers.GetOptions{Range: &drivers.Range{Offset: tc.off, Length: tc.length}})
			if tc.kind != nil {
				wantKind(t, "Get", err, tc.kind)
				return
			}
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if string(got) != tc.want {
				t.Errorf("Get range (%d, %d) = %q, want %q", tc.off, tc.length, got, tc.want)
			}
		})
	}
}

func testList(t *testing.T, s drivers.Store) {
	c := NewContainer(t, s)
	var keys []string
	for i := range 12 {
		keys = append(keys, fmt.Sprintf("log/%020d", i*7))
	}
	keys = append(keys, "meta", "snap/00000000000000000003", "snap/00000000000000000010",
		"A", "B", "a", "b", "log0", "lof", "~", "é", "z/y")
	if !s.Capabilities().PathKeys {
		keys = append(keys, "log") // both a key and the parent of keys
	}
	var wg sync.WaitGroup
	for _, k := range keys {
		wg.Go(func() { mustPut(t, s, c, k, []byte(k)) })
	}
	wg.Wait()
	sorted := slices.Clone(keys)
	slices.Sort(sorted) // Go compares strings bytewise, which is the order wanted
	for _, limit := range []int{1, 5, 7, 1000} {
		if got := listAll(t, s, c, "", "", limit); !slices.Equal(got, sorted) {
			t.Errorf("list limit %d:\n got %q\nwant %q", limit, got, sorted)
		}
	}
	var logs []string
	for _, k := range sorted {
		if strings.HasPrefix(k, "log/") {
			logs = append(logs, k)
		}
	}
	if got := listAll(t, s, c, "log/", "", 5); !slices.Equal(got, logs) {
		t.Errorf("prefix log/:\n got %q\nwant %q", got, logs)
	}
	if got := listAll(t, s, c, "log/", logs[4], 3); !slices.Equal(got, logs[5:]) {
		t.Errorf("prefix log/ after %q:\n got %q\nwant %q", logs[4], got, logs[5:])
	}
	// A marker that is not itself a key.
	if got := listAll(t, s, c, "", "log/~", 4); !slices.Equal(got, sorted[slices.Index(sorted, "log0"):]) {
		t.Errorf("after log/~:\n got %q", got)
	}
	if got := listAll(t, s, c, "", "~", 4); len(got) != 1 || got[0] != "é" {
		t.Errorf("after ~: got %q, want [é]", got)
	}
	p, err := s.List(context.Background(), c, &drivers.ListOptions{Prefix: "meta"})
	if err != nil || len(p.Objects) != 1 || p.Objects[0].Size != 4 {
		t.Errorf("List prefix meta = %+v, %v; want one key of size 4", p, err)
	}
}

// AwkwardKeys are keys that must round-trip unchanged on every driver and
// must never reach outside their container.
var AwkwardKeys = []string{
	".", "..", "...", "../escape", "../../../../etc/passwd", "a/../../b",
	"/leading", "trailing/", "a//b", "a/./b", ".hidden", "./dot",
	" space ", "tab\there", "ünïcødé", "日本語のキー", "emoji-😀",
	"%2F", "%00", "percent%", "back\\slash", `quote"'`, "semi;colon",
	"q?x=1&y", "hash#frag", "plus+sign", "star*", "tilde~", "<>|:",
	"CON", "aux.txt", strings.Repeat("k", drivers.MaxKeyLen),
	strings.Repeat("é", drivers.MaxKeyLen/2), strings.Repeat("a/", drivers.MaxKeyLen/2-1) + "z",
	strings.Repeat("x", 300) + "/" + strings.Repeat("y", 300),
}

func testAwkwardKeys(t *testing.T, s drivers.Store) {
	ctx := context.Background()
	c := NewContainer(t, s)
	other := NewContainer(t, s)
	keys := AwkwardKeys
	if s.Capabilities().PathKeys {
		// The store refuses keys that are not clean paths, and must say
		// so rather than store them anywhere else.
		keys = nil
		for _, k := range AwkwardKeys {
			if !drivers.PathUnsafe(k) {
				keys = append(keys, k)
				continue
			}
			wantKind(t, fmt.Sprintf("Put(%.40q) on a path-keyed store", k), s.Put(ctx, c, k, []byte("x"), nil), drivers.ErrInvalid)
		}
	}
	for _, k := range keys {
		mustPut(t, s, c, k, []byte("v:"+k))
	}
	for _, k := range keys {
		if got := mustGet(t, s, c, k); string(got) != "v:"+k {
			t.Errorf("Get(%.40q) = %.40q", k, got)
		}
		if _, err := s.Head(ctx, c, k); err != nil {
			t.Errorf("Head(%.40q): %v", k, err)
		}
	}
	want := slices.Clone(keys)
	slices.Sort(want)
	if got := listAll(t, s, c, "", "", 10); !slices.Equal(got, want) {
		t.Errorf("listing of awkward keys:\n got %q\nwant %q", got, want)
	}
	if p, err := s.List(ctx, other, nil); err != nil || len(p.Objects) != 0 {
		t.Errorf("a neighbouring container lists %d keys (%v); want none", len(p.Objects), err)
	}
	if err := drivers.DeleteMany(ctx, s, c, keys); err != nil {
		t.Fatalf("DeleteMany: %v", err)
	}
	if got := listAll(t, s, c, "", "", 100); len(got) != 0 {
		t.Errorf("after deleting every awkward key, listed %q", got)
	}
}

func testInvalidNames(t *testing.T, s drivers.Store) {
	ctx := context.Background()
	c := NewContainer(t, s)
	for _, k := range []string{"", "nul\x00byte", strings.Repeat("k", drivers.MaxKeyLen+1), "bad\xffutf8"} {
		wantKind(t, fmt.Sprintf("Put(%.20q)", k), s.Put(ctx, c, k, []byte("x"), nil), drivers.ErrInvalid)
		_, err := s.Get(ctx, c, k, nil)
		wantKind(t, fmt.Sprintf("Get(%.20q)", k), err, drivers.ErrInvalid)
	}
	for _, name := range []string{"", ".", "..", "a/b", "../x", ".hidden", "sp ace", strings.Repeat("c", drivers.MaxContainerLen+1)} {
		wantKind(t, fmt.Sprintf("CreateContainer(%.20q)", name), s.CreateContainer(ctx, name), drivers.ErrInvalid)
		wantKind(t, fmt.Sprintf("Put in container %.20q", name), s.Put(ctx, name, "k", nil, nil), drivers.ErrInvalid)
	}
}

func testCancelled(t *testing.T, s drivers.Store) {
	c := NewContainer(t, s)
	mustPut(t, s, c, "k", []byte("v"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: %v, want context.Canceled", what, err)
		}
	}
	check("Put", s.Put(ctx, c, "k2", []byte("v"), nil))
	_, err := s.Get(ctx, c, "k", nil)
	check("Get", err)
	_, err = s.Head(ctx, c, "k")
	check("Head", err)
	check("Delete", s.Delete(ctx, c, "k"))
	_, err = s.List(ctx, c, nil)
	check("List", err)
	check("CreateContainer", s.CreateContainer(ctx, "dt-cancel-"+randHex(4)))
	check("DeleteContainer", s.DeleteContainer(ctx, c))
	_, err = s.ListContainers(ctx, nil)
	check("ListContainers", err)
	check("DeleteMany", drivers.DeleteMany(ctx, s, c, []string{"k"}))
	// Nothing happened.
	if got := mustGet(t, s, c, "k"); string(got) != "v" {
		t.Errorf("after cancelled calls, k = %q", got)
	}
	if _, err := s.Head(context.Background(), c, "k2"); !errors.Is(err, drivers.ErrNotFound) {
		t.Errorf("a cancelled Put wrote k2 (Head: %v)", err)
	}
}

func testDeleteMany(t *testing.T, s drivers.Store) {
	c := NewContainer(t, s)
	var keys []string
	for i := range 30 {
		keys = append(keys, fmt.Sprintf("d/%03d", i))
	}
	var wg sync.WaitGroup
	for _, k := range keys {
		wg.Go(func() { mustPut(t, s, c, k, []byte("x")) })
	}
	wg.Wait()
	del := append(slices.Clone(keys[:25]), "d/missing-1", "d/missing-2")
	if err := drivers.DeleteMany(context.Background(), s, c, del); err != nil {
		t.Fatalf("DeleteMany: %v", err)
	}
	if got := listAll(t, s, c, "d/", "", 100); !slices.Equal(got, keys[25:]) {
		t.Errorf("after DeleteMany: %q, want %q", got, keys[25:])
	}
}

func testCreateOnly(t *testing.T, s drivers.Store) {
	ctx := context.Background()
	c := NewContainer(t, s)
	co := &drivers.PutOptions{CreateOnly: true}
	err := s.Put(ctx, c, "once", []byte("first"), co)
	if s.Capabilities().CreateOnly == drivers.CreateOnlyNone {
		wantKind(t, "create-only Put on a store without it", err, drivers.ErrNotSupported)
		return
	}
	if err != nil {
		t.Fatalf("first create-only Put: %v", err)
	}
	wantKind(t, "second create-only Put", s.Put(ctx, c, "once", []byte("second"), co), drivers.ErrPreconditionFailed)
	if got := mustGet(t, s, c, "once"); string(got) != "first" {
		t.Errorf("after a refused create-only Put, value = %q, want %q", got, "first")
	}
	// After a refusal the driver's connections still work (the Expect:
	// 100-continue trap of Swift).
	for i := range 20 {
		wantKind(t, "repeated create-only Put", s.Put(ctx, c, "once", []byte("again"), co), drivers.ErrPreconditionFailed)
		mustPut(t, s, c, fmt.Sprintf("after/%d", i), []byte("x"))
	}
	// A plain put still overwrites.
	mustPut(t, s, c, "once", []byte("third"))
	if got := mustGet(t, s, c, "once"); string(got) != "third" {
		t.Errorf("plain Put after create-only: %q", got)
	}
}

// RaceWriters is how many goroutines race to create one key.
const RaceWriters = 16

func testCreateOnlyRace(t *testing.T, s drivers.Store) {
	caps := s.Capabilities()
	if caps.CreateOnly == drivers.CreateOnlyNone {
		t.Skipf("store has no create-only puts (checked in CreateOnly)")
	}
	c := NewContainer(t, s)
	const trials = 5
	for trial := range trials {
		key := fmt.Sprintf("race/%d", trial)
		errs := make([]error, RaceWriters)
		var start, wg sync.WaitGroup
		start.Add(1)
		for i := range RaceWriters {
			wg.Go(func() {
				start.Wait()
				errs[i] = s.Put(context.Background(), c, key, fmt.Appendf(nil, "writer %d", i), &drivers.PutOptions{CreateOnly: true})
			})
		}
		start.Done()
		wg.Wait()
		var winners []int
		for i, err := range errs {
			switch {
			case err == nil:
				winners = append(winners, i)
			case errors.Is(err, drivers.ErrPreconditionFailed):
			default:
				t.Errorf("trial %d writer %d: %v, want nil or ErrPreconditionFailed", trial, i, err)
			}
		}
		got := string(mustGet(t, s, c, key))
		stored := -1
		for _, w := range winners {
			if got == fmt.Sprintf("writer %d", w) {
				stored = w
			}
		}
		switch caps.CreateOnly {
		case drivers.CreateOnlyAtomic:
			if len(winners) != 1 {
				t.Errorf("trial %d: %d of %d create-only writers won (%v); an atomic store lets exactly one through", trial, len(winners), RaceWriters, winners)
			}
		case drivers.CreateOnlyBestEffort:
			if len(winners) < 1 {
				t.Errorf("trial %d: no writer won", trial)
			}
			t.Logf("trial %d: %d of %d concurrent create-only writers won (best-effort store)", trial, len(winners), RaceWriters)
		}
		if stored < 0 {
			t.Errorf("trial %d: stored value %q is no winner's (%v)", trial, got, winners)
		}
	}
}

// Eventually polls cond until it holds, failing the test after 30 s: the
// way tests here wait for background work, instead of sleeping.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}
