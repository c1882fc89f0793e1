package fsdriver

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/cistern-mq/cistern/drivers"
	"github.com/cistern-mq/cistern/drivers/drivertest"
)

func newStore(t testing.TB) (*Store, string) {
	t.Helper()
	parent := t.TempDir()
	root := filepath.Join(parent, "data")
	s, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, parent
}

func TestConformance(t *testing.T) {
	s, _ := newStore(t)
	drivertest.Run(t, s)
}

func BenchmarkStore(b *testing.B) {
	s, _ := newStore(b)
	drivertest.Bench(b, s)
}

// No key, however awkward, creates anything outside its container's
// directory.
func TestKeysStayInContainer(t *testing.T) {
	s, parent := newStore(t)
	ctx := context.Background()
	if err := s.CreateContainer(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	for _, k := range drivertest.AwkwardKeys {
		if err := s.Put(ctx, "c", k, []byte("x"), nil); err != nil {
			t.Fatalf("Put(%.40q): %v", k, err)
		}
	}
	cdir := s.dir("c")
	err := filepath.WalkDir(parent, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == filepath.Join(s.Root(), lockName) || p == filepath.Join(s.Root(), formatName) {
			return nil
		}
		if !d.IsDir() && !strings.HasPrefix(p, cdir+string(filepath.Separator)) {
			t.Errorf("file outside the container: %s", p)
		}
		if len(d.Name()) > 255 {
			t.Errorf("name of %d bytes: %s", len(d.Name()), p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Stray files in a container directory are neither listed nor in the way
// of deleting the container.
func TestStrayFiles(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	if err := s.CreateContainer(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.dir("c"), ".tmp-crashed"), []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := s.List(ctx, "c", nil)
	if err != nil || len(p.Objects) != 0 {
		t.Fatalf("List = %+v, %v; want empty", p, err)
	}
	if err := s.DeleteContainer(ctx, "c"); err != nil {
		t.Fatalf("DeleteContainer: %v", err)
	}
	if _, err := os.Stat(s.dir("c")); !os.IsNotExist(err) {
		t.Errorf("container directory still there: %v", err)
	}
}

func TestPutIntoMissingContainer(t *testing.T) {
	s, _ := newStore(t)
	err := s.Put(context.Background(), "nope", "k", []byte("x"), nil)
	if !errors.Is(err, drivers.ErrNotFound) {
		t.Errorf("Put into a missing container: %v, want ErrNotFound", err)
	}
}

func FuzzKeyEncoding(f *testing.F) {
	for _, k := range drivertest.AwkwardKeys {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, key string) {
		if drivers.ValidKey(key) != nil {
			return
		}
		enc := keyPath(key)
		if !filepath.IsLocal(enc) {
			t.Fatalf("keyPath(%q) = %q is not local", key, enc)
		}
		for _, seg := range strings.Split(enc, string(filepath.Separator)) {
			if len(seg) > 255 || seg == "" || seg[0] == '.' {
				t.Fatalf("keyPath(%q) has segment %q", key, seg)
			}
			if caseless(seg) != seg {
				t.Fatalf("keyPath(%q) has segment %q, which has letters of both cases", key, seg)
			}
		}
		got, ok := decodePath(enc)
		if !ok || got != key {
			t.Fatalf("decodePath(keyPath(%q)) = %q, %v", key, got, ok)
		}
		if !utf8.ValidString(got) {
			t.Fatal("invalid UTF-8 round trip")
		}
	})
}

// decodePath reverses keyPath.
func decodePath(rel string) (string, bool) {
	var b strings.Builder
	names := strings.Split(filepath.ToSlash(rel), "/")
	for i, n := range names {
		piece, kind, ok := decodeName(n)
		if !ok || (kind == kindFile) != (i == len(names)-1) {
			return "", false
		}
		b.WriteString(piece)
		if kind == kindSlash {
			b.WriteByte('/')
		}
	}
	return b.String(), true
}

// caseless folds name the way a case-insensitive file system compares
// names, except that hex digits after '%' keep their case: a name that
// caseless changes could collide with another there.
func caseless(name string) string {
	b := []byte(name)
	for i := 0; i < len(b); i++ {
		if b[i] == '%' {
			i += 2
			continue
		}
		if b[i] >= 'A' && b[i] <= 'Z' {
			b[i] += 'a' - 'A'
		}
	}
	return string(b)
}
