package fsdriver

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cistern-mq/cistern/drivers"
	"github.com/cistern-mq/cistern/drivers/drivertest"
)

// Two opens of one folder: the second fails, naming the folder, until the
// first is closed.
func TestSecondOpenFails(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s1, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := New(dir)
	if err == nil {
		s2.Close()
		t.Fatal("second New of one folder succeeded")
	}
	if !errors.Is(err, drivers.ErrPreconditionFailed) || !strings.Contains(err.Error(), "in use by another cistern") ||
		!strings.Contains(err.Error(), dir) {
		t.Errorf("second New: %v; want ErrPreconditionFailed naming %s", err, dir)
	}
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s1.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	s3, err := New(dir)
	if err != nil {
		t.Fatalf("New after Close: %v", err)
	}
	s3.Close()
}

// Temporary files left by puts a crash interrupted are removed at the next
// open.
func TestStaleTempFilesRemovedAtOpen(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	if err := s.CreateContainer(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "c", "k", []byte("v"), nil); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(s.tmp, ".tmp-crashed")
	if err := os.WriteFile(stale, []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err := New(s.Root())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale temporary file still there after open: %v", err)
	}
	if b, err := s.Get(ctx, "c", "k", nil); err != nil || string(b) != "v" {
		t.Errorf("Get after reopen = %q, %v", b, err)
	}
}

// Keys and containers that differ only in letter case never get names that
// a case-insensitive file system (macOS, Windows) would take as one.
func TestNamesCaseSafe(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	for _, c := range []string{"ab", "Ab", "AB", "aB"} {
		if err := s.CreateContainer(ctx, c); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"queue", "Queue", "QUEUE", "catalog/Proj/Q", "catalog/proj/q", "catalog/PROJ/q"} {
			if err := s.Put(ctx, c, k, []byte(c+":"+k), nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	err := filepath.WalkDir(s.Root(), func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		names, err := f.Readdirnames(-1)
		f.Close()
		for i, a := range names {
			for _, b := range names[i+1:] {
				if strings.EqualFold(a, b) {
					t.Errorf("in %s: %q and %q are one name on a case-insensitive file system", p, a, b)
				}
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	page, err := s.ListContainers(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range page.Objects {
		names = append(names, o.Key)
	}
	if want := []string{"AB", "Ab", "aB", "ab"}; !slices.Equal(names, want) {
		t.Errorf("ListContainers = %q, want %q", names, want)
	}
	if b, err := s.Get(ctx, "aB", "catalog/Proj/Q", nil); err != nil || string(b) != "aB:catalog/Proj/Q" {
		t.Errorf("Get = %q, %v", b, err)
	}
}

// containerName and decodeContainerName round-trip every valid name, and
// the longest one still fits in a file name.
func TestContainerNames(t *testing.T) {
	for _, n := range []string{"a", "cistern-control", "q-0123abcdef", "A", "a.B_c-D9", strings.Repeat("Z", drivers.MaxContainerLen), strings.Repeat("aB", drivers.MaxContainerLen/2)} {
		d := containerName(n)
		if len(d) > 255 || strings.ToLower(d) != d {
			t.Errorf("containerName(%q) = %q", n, d)
		}
		if got, ok := decodeContainerName(d); !ok || got != n {
			t.Errorf("decodeContainerName(%q) = %q, %v; want %q", d, got, ok, n)
		}
	}
	for _, d := range []string{"", ".x", "A", "a@", "a@0", "ab@4", "a@1x", "a%b"} {
		if got, ok := decodeContainerName(d); ok {
			t.Errorf("decodeContainerName(%q) = %q, want refused", d, got)
		}
	}
}

// encodeKeyV1 is format 1's key encoding, to make folders of that format.
func encodeKeyV1(key string) string {
	var b strings.Builder
	seg := 0
	for i := 0; i < len(key); i++ {
		c := key[i]
		n := 1
		if !(plain(c) || c >= 'A' && c <= 'Z') {
			n = 3
		}
		if seg+n > 200 {
			b.WriteString("+/")
			seg = 0
		}
		if n == 1 {
			b.WriteByte(c)
		} else {
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
		}
		seg += n
	}
	return filepath.FromSlash(b.String())
}

// writeV1 makes a data folder of format 1 holding data.
func writeV1(t *testing.T, root string, data map[string]map[string]string) {
	t.Helper()
	for c, keys := range data {
		for k, v := range keys {
			p := filepath.Join(root, c, encodeKeyV1(k))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		// An interrupted put of format 1 left its temporary file here.
		if err := os.WriteFile(filepath.Join(root, c, ".tmp-0123"), []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func v1Data() map[string]map[string]string {
	long := strings.Repeat("é", 150) + "/" + strings.Repeat("x", 300)
	return map[string]map[string]string{
		"cistern-control": {
			"catalog/p1/Queue": `{"gen":"1"}`, "catalog/p1/queue": `{"gen":"2"}`, "catalog/%/a": "3",
			"trash/abc": "", long: "long",
		},
		"q-0123":     {"meta": "{}", "log/00000000000000000001": "log1", "log/00000000000000000002": "log2", "log": "both"},
		"Mixed.Case": {"k": "v"},
	}
}

// checkV1Data checks that s holds exactly what v1Data wrote.
func checkV1Data(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	for c, keys := range v1Data() {
		var want []string
		for k, v := range keys {
			want = append(want, k)
			b, err := s.Get(ctx, c, k, nil)
			if err != nil || string(b) != v {
				t.Errorf("Get(%s, %.40q) = %q, %v; want %q", c, k, b, err, v)
			}
		}
		slices.Sort(want)
		p, err := s.List(ctx, c, nil)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, o := range p.Objects {
			got = append(got, o.Key)
		}
		if !slices.Equal(got, want) {
			t.Errorf("List(%s) = %.200q, want %.200q", c, got, want)
		}
	}
	p, err := s.ListContainers(ctx, nil)
	if err != nil || len(p.Objects) != 3 {
		t.Errorf("ListContainers = %+v, %v; want the 3 converted", p, err)
	}
}

// A folder of format 1 (no format file) is converted in place at open:
// every key reads back, the old directories are gone, the format file is
// written.
func TestOpenConvertsFormat1(t *testing.T) {
	root := filepath.Join(t.TempDir(), "data")
	writeV1(t, root, v1Data())
	s, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkV1Data(t, s)
	if b, err := os.ReadFile(filepath.Join(root, formatName)); err != nil || string(b) != formatText {
		t.Errorf("format file = %q, %v", b, err)
	}
	for c := range v1Data() {
		if _, err := os.Stat(filepath.Join(root, c)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("format-1 directory %s still there: %v", c, err)
		}
	}
	if _, err := os.Stat(filepath.Join(root, convertDir)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("conversion work area still there: %v", err)
	}
}

// A conversion interrupted at any step finishes at the next open.
func TestOpenFinishesInterruptedConversion(t *testing.T) {
	t.Run("while building", func(t *testing.T) {
		root := filepath.Join(t.TempDir(), "data")
		writeV1(t, root, v1Data())
		// A half-built work area, as a crash leaves it.
		if err := os.MkdirAll(filepath.Join(root, convertDir, "q-0123", "log~"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, convertDir, "q-0123", "meta"), []byte("wrong"), 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := New(root)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		checkV1Data(t, s)
	})
	t.Run("after the rename", func(t *testing.T) {
		root := filepath.Join(t.TempDir(), "data")
		writeV1(t, root, v1Data())
		old, err := v1Containers(root)
		if err != nil {
			t.Fatal(err)
		}
		if err := convertV1(root, old); err != nil {
			t.Fatal(err)
		}
		// The crash came before the old directories were removed and the
		// format file written.
		s, err := New(root)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		checkV1Data(t, s)
		if _, err := os.Stat(filepath.Join(root, "q-0123")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("format-1 directory still there: %v", err)
		}
	})
}

// A folder of a format this version does not know is refused, not
// rewritten.
func TestOpenRefusesUnknownFormat(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, formatName), []byte("cistern fs format 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := New(root)
	if err == nil {
		s.Close()
		t.Fatal("New of a format-3 folder succeeded")
	}
	if !errors.Is(err, drivers.ErrInvalid) || !strings.Contains(err.Error(), "format 3") {
		t.Errorf("New: %v; want ErrInvalid naming the format", err)
	}
	// The lock went with the failed open.
	if err := os.Remove(filepath.Join(root, formatName)); err != nil {
		t.Fatal(err)
	}
	s, err = New(root)
	if err != nil {
		t.Fatalf("New after the failed open: %v", err)
	}
	s.Close()
}

// Listing a prefix reads the directories under it, not the container: with
// many keys elsewhere, a page of a small prefix reads a handful of names.
func TestListReadsOnlyThePrefix(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	c := drivertest.NewContainer(t, s)
	for i := range 300 {
		if err := s.Put(ctx, c, "catalog/big/q"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+string(rune('a'+i/26)), nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"catalog/small/a", "catalog/small/b", "catalog/small/c"} {
		if err := s.Put(ctx, c, k, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	before := s.namesRead.Load()
	p, err := s.List(ctx, c, &drivers.ListOptions{Prefix: "catalog/small/", Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Objects) != 2 || p.Objects[1].Key != "catalog/small/b" || p.Next != "catalog/small/b" {
		t.Fatalf("List = %+v", p)
	}
	if n := s.namesRead.Load() - before; n > 10 {
		t.Errorf("a page of a 3-key prefix read %d directory entries, want at most 10", n)
	}
}

// A folder of someone else's directories is refused, and left alone, not
// converted (which would remove them).
func TestOpenRefusesForeignFolder(t *testing.T) {
	root := t.TempDir()
	notes := filepath.Join(root, "Documents", "notes")
	if err := os.MkdirAll(filepath.Dir(notes), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(notes, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := New(root)
	if err == nil {
		s.Close()
		t.Fatal("New of a folder of other directories succeeded")
	}
	if !errors.Is(err, drivers.ErrInvalid) || !strings.Contains(err.Error(), "no cistern data") {
		t.Errorf("New: %v; want ErrInvalid saying it holds no cistern data", err)
	}
	if b, err := os.ReadFile(notes); err != nil || string(b) != "mine" {
		t.Errorf("the folder's file after New: %q, %v", b, err)
	}
}

// TestSharedOpens: cluster nodes share a folder; a single node cannot
// join them, nor they it.
func TestSharedOpens(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	a, err := NewShared(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewShared(dir)
	if err != nil {
		t.Fatalf("second shared open: %v", err)
	}
	if s, err := New(dir); err == nil {
		s.Close()
		t.Fatal("an exclusive open succeeded beside shared ones")
	}
	a.Close()
	b.Close()
	s, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := NewShared(dir); err == nil {
		c.Close()
		t.Fatal("a shared open succeeded beside an exclusive one")
	}
	s.Close()
}

// TestSharedOpenKeepsPeersTemps: a node that opens a shared folder (a
// cluster node starting) leaves the other nodes' puts under way alone,
// and removes only temporary files old enough to be a crash's leftovers.
// Removing a peer's file failed its put as if the container were gone.
func TestSharedOpenKeepsPeersTemps(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	a, err := NewShared(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx := context.Background()
	if err := a.CreateContainer(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	inFlight := filepath.Join(a.tmp, ".tmp-underway")
	stale := filepath.Join(a.tmp, ".tmp-crashed")
	for _, f := range []string{inFlight, stale} {
		if err := os.WriteFile(f, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * staleTemp)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	b, err := NewShared(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := os.Stat(inFlight); err != nil {
		t.Errorf("a peer's temporary file is gone after a shared open: %v", err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale temporary file still there after a shared open: %v", err)
	}
	if err := a.Put(ctx, "c", "log/1", []byte("v"), &drivers.PutOptions{CreateOnly: true}); err != nil {
		t.Errorf("put after a peer opened: %v", err)
	}
}

// TestSharedListsSeeEachOther: what one node of a shared folder writes is
// in the other's listings at once, also in a directory large enough that a
// single node would serve it from its cache.
func TestSharedListsSeeEachOther(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	a, err := NewShared(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := NewShared(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := a.CreateContainer(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	for i := range minCachedNames * 2 {
		if err := a.Put(ctx, "c", fmt.Sprintf("k%04d", i), []byte("x"), nil); err != nil {
			t.Fatal(err)
		}
	}
	count := func() int {
		n, marker := 0, ""
		for {
			p, err := b.List(ctx, "c", &drivers.ListOptions{Marker: marker, Limit: 50})
			if err != nil {
				t.Fatal(err)
			}
			n += len(p.Objects)
			if p.Next == "" {
				return n
			}
			marker = p.Next
		}
	}
	if n := count(); n != minCachedNames*2 {
		t.Fatalf("b lists %d", n)
	}
	if err := a.Put(ctx, "c", "k9999", []byte("x"), nil); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != minCachedNames*2+1 {
		t.Fatalf("b lists %d after a's put, want %d", n, minCachedNames*2+1)
	}
}
