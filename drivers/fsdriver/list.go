package fsdriver

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/cistern-mq/cistern/drivers"
)

// List implements drivers.Store. It starts in the directory that every key
// under the prefix lives in (keyPieces) and walks down in byte order,
// reading only the directories whose keys can be on the page and stopping
// one key past the page. A page therefore costs the reads of the
// directories on its path (for the catalog of one project: that project's
// directory, not the whole control container), never the whole container.
func (s *Store) List(ctx context.Context, container string, opts *drivers.ListOptions) (drivers.Page, error) {
	if err := check(ctx, "list", container, "", false); err != nil {
		return drivers.Page{}, err
	}
	o := drivers.CheckListOptions(opts)
	base := s.dir(container)
	if _, err := os.Stat(base); err != nil {
		return drivers.Page{}, mapErr(err, "fs list %s", container)
	}
	dirs, _ := keyPieces(o.Prefix)
	start, known := base, ""
	if dirs != "" {
		start = filepath.Join(base, filepath.FromSlash(dirs))
		known = o.Prefix[:decodedLen(dirs)]
	}
	l := lister{ctx: ctx, read: &s.namesRead, cache: s.cache, prefix: o.Prefix, marker: o.Marker, limit: o.Limit}
	if err := l.walk(start, known); err != nil {
		if ctxErr := drivers.CtxErr(ctx, "fs list"); ctxErr != nil {
			return drivers.Page{}, ctxErr
		}
		return drivers.Page{}, mapErr(err, "fs list %s", container)
	}
	var p drivers.Page
	if len(l.found) > o.Limit {
		l.found = l.found[:o.Limit]
		p.Next = l.found[o.Limit-1].key
	}
	p.Objects = make([]drivers.ObjectInfo, 0, len(l.found))
	for _, f := range l.found {
		info := drivers.ObjectInfo{Key: f.key}
		if st, err := os.Lstat(f.path); err == nil {
			info.Size = st.Size()
		} else if errors.Is(err, fs.ErrNotExist) {
			continue // deleted since it was read
		}
		p.Objects = append(p.Objects, info)
	}
	return p, nil
}

// decodedLen is the length of the key prefix that the directories dirs
// (from keyPieces) stand for.
func decodedLen(dirs string) int {
	n := 0
	for _, name := range strings.Split(strings.TrimSuffix(dirs, "/"), "/") {
		piece, kind, _ := decodeName(name)
		n += len(piece)
		if kind == kindSlash {
			n++
		}
	}
	return n
}

type found struct{ key, path string }

// lister collects, in byte order, up to limit+1 keys under prefix and after
// marker.
type lister struct {
	ctx            context.Context
	read           *atomic.Int64
	cache          *dirCache
	prefix, marker string
	limit          int
	found          []found
}

type entry struct {
	name  string
	piece string // the key bytes this entry adds
	kind  entryKind
}

// start is the smallest key the entry can stand for, or the common start
// of all of them: entries sort by it.
func (e entry) start(base string) string {
	if e.kind == kindSlash {
		return base + e.piece + "/"
	}
	return base + e.piece
}

func (l *lister) full() bool { return len(l.found) > l.limit }

// readEntries reads and sorts the names of dir.
func (l *lister) readEntries(dir string) ([]entry, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return nil, err
	}
	l.read.Add(int64(len(names)))
	ents := make([]entry, 0, len(names))
	for _, n := range names {
		if piece, kind, ok := decodeName(n); ok {
			ents = append(ents, entry{name: n, piece: piece, kind: kind})
		}
	}
	// A key sorts before the chunk directory that continues it, and the
	// '~' directory's keys all start with piece + "/": ordering entries by
	// their start is byte order of the keys (keys.go says why they never
	// interleave).
	slices.SortFunc(ents, compareEntries)
	return ents, nil
}

func compareEntries(a, b entry) int {
	if c := strings.Compare(a.start(""), b.start("")); c != 0 {
		return c
	}
	return int(a.kind) - int(b.kind)
}

// walk lists the directory dir, whose keys all start with base.
func (l *lister) walk(dir, base string) error {
	if err := l.ctx.Err(); err != nil {
		return err
	}
	ents, err := l.cache.get(dir, func() ([]entry, error) { return l.readEntries(dir) })
	if errors.Is(err, fs.ErrNotExist) {
		return nil // no key under it, or removed while we walked
	}
	if err != nil {
		return err
	}
	for _, e := range l.after(ents, base) {
		if l.full() {
			return nil
		}
		s := e.start(base)
		if s > l.prefix && !strings.HasPrefix(s, l.prefix) {
			return nil // this and every later entry is past the prefix
		}
		p := filepath.Join(dir, e.name)
		if e.kind == kindFile {
			if s > l.marker && strings.HasPrefix(s, l.prefix) {
				l.found = append(l.found, found{key: s, path: p})
			}
			continue
		}
		// A directory: all its keys start with s and are longer.
		if !strings.HasPrefix(s, l.prefix) && !strings.HasPrefix(l.prefix, s) {
			continue
		}
		if s < l.marker && !strings.HasPrefix(l.marker, s) {
			continue // every key in it is before the marker
		}
		if err := l.walk(p, s); err != nil {
			return err
		}
	}
	return nil
}

// after returns the entries of a directory (whose keys start with base)
// that can hold keys after the marker, by binary search: those that start
// after it, and before them the one directory whose keys the marker may
// be among (at most one directory's start is a prefix of a key: keys.go).
func (l *lister) after(ents []entry, base string) []entry {
	rel, ok := strings.CutPrefix(l.marker, base)
	if !ok {
		if l.marker > base {
			return nil // every key here is before the marker
		}
		return ents
	}
	// Entries that start at the marker count: a directory there holds
	// only keys after it.
	i, _ := slices.BinarySearchFunc(ents, rel, func(e entry, rel string) int {
		if e.start("") >= rel {
			return 1
		}
		return -1
	})
	dirs, _ := keyPieces(rel)
	if dirs == "" {
		return ents[i:]
	}
	first, _, _ := strings.Cut(dirs, "/")
	piece, kind, _ := decodeName(first)
	j, found := slices.BinarySearchFunc(ents, entry{piece: piece, kind: kind}, compareEntries)
	if !found || j >= i {
		return ents[i:]
	}
	out := make([]entry, 0, len(ents)-i+1)
	return append(append(out, ents[j]), ents[i:]...)
}
