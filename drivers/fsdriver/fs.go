// Package fsdriver is Cistern's embedded default store: a local folder, one
// directory per container. A put is durable before it returns (temporary
// file, fsync, rename or link, fsync of the directory), and a create-only
// put is atomic (link(2) fails if the name exists; nothing is checked before
// writing). Keys are laid out as directories per '/' so that a listing
// reads only what its prefix and page need, with names that stay distinct
// on case-insensitive file systems. One process at a time may open a
// folder (an flock(2) on a lock file).
package fsdriver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/cistern-mq/cistern/drivers"
)

// Store keeps containers as directories under its data folder (format.go
// says how the folder is laid out, keys.go how keys become paths). One
// process at a time has a folder open: New takes an exclusive lock on it,
// and Close releases it.
type Store struct {
	root string // the data folder
	data string // the directory holding the containers
	tmp  string // temporary files of puts under way
	lock *os.File
	// namesRead counts the directory entries listings read, so that tests
	// can tell what a listing costs without timing it.
	namesRead atomic.Int64
	cache     *dirCache

	closeOnce sync.Once
	closeErr  error
}

// New opens (creating it if needed) the store rooted at dir. It fails with
// ErrPreconditionFailed when another open Store, in this process or
// another, has the folder. A folder of an older format is converted first
// (format.go).
func New(dir string) (*Store, error) { return open(dir, false) }

// NewShared opens the store at dir for one of several Cistern nodes of a
// cluster on the same machine (or on a file system that honours flock):
// each holds a shared lock, so a single node, which wants it alone, still
// cannot open the folder while they run, nor they while it does.
func NewShared(dir string) (*Store, error) { return open(dir, true) }

func open(dir string, shared bool) (*Store, error) {
	if dir == "" {
		return nil, drivers.Errorf(drivers.ErrInvalid, "fs: no data directory given")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, drivers.Wrap(drivers.ErrInvalid, err, "fs: data directory %q", dir)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, mapErr(err, "fs: create data directory %s", abs)
	}
	if err := syncDir(filepath.Dir(abs)); err != nil {
		return nil, mapErr(err, "fs: sync parent of %s", abs)
	}
	lockPath := filepath.Join(abs, lockName)
	lock, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, mapErr(err, "fs: open lock file %s", lockPath)
	}
	if err := lockFile(lock, shared); err != nil {
		lock.Close()
		if errors.Is(err, errLocked) {
			return nil, drivers.Wrap(drivers.ErrPreconditionFailed, err,
				"fs: data directory %s is in use by another cistern (it holds the lock on %s): stop it first, or give this one another directory", abs, lockPath)
		}
		return nil, mapErr(err, "fs: lock %s", lockPath)
	}
	if err := prepare(abs, shared); err != nil {
		lock.Close()
		return nil, err
	}
	st := &Store{root: abs, data: filepath.Join(abs, containersDir), tmp: filepath.Join(abs, tmpDir), lock: lock}
	if !shared {
		st.cache = newDirCache()
	}
	return st, nil
}

// Root returns the data directory.
func (s *Store) Root() string { return s.root }

func (s *Store) dir(container string) string { return filepath.Join(s.data, containerName(container)) }

func (s *Store) path(container, key string) string {
	return filepath.Join(s.dir(container), keyPath(key))
}

func check(ctx context.Context, op, container, key string, checkKey bool) error {
	if err := drivers.CtxErr(ctx, "fs "+op); err != nil {
		return err
	}
	if err := drivers.ValidContainer(container); err != nil {
		return err
	}
	if checkKey {
		return drivers.ValidKey(key)
	}
	return nil
}

// mapErr turns an OS error into a driver error of the right kind.
func mapErr(err error, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return drivers.Wrap(drivers.ErrNotFound, err, "%s", msg)
	case errors.Is(err, fs.ErrExist), errors.Is(err, syscall.ENOTEMPTY):
		return drivers.Wrap(drivers.ErrPreconditionFailed, err, "%s", msg)
	case errors.Is(err, syscall.ENAMETOOLONG), errors.Is(err, syscall.EINVAL):
		return drivers.Wrap(drivers.ErrInvalid, err, "%s", msg)
	}
	// Disk full, I/O errors, permissions: the store cannot serve now.
	return drivers.Wrap(drivers.ErrUnavailable, err, "%s", msg)
}

// Put implements drivers.Store.
func (s *Store) Put(ctx context.Context, container, key string, data []byte, opts *drivers.PutOptions) error {
	if err := check(ctx, "put", container, key, true); err != nil {
		return err
	}
	dir := s.dir(container)
	tmp, err := writeTemp(s.tmp, data)
	if err != nil {
		return mapErr(err, "fs put %s/%.64s", container, key)
	}
	defer os.Remove(tmp) // a no-op once renamed
	final := s.path(container, key)
	createOnly := opts != nil && opts.CreateOnly
	// The parent of a long key's last segment may be removed by a concurrent
	// delete between MkdirAll and the link; try again a few times.
	for attempt := 0; ; attempt++ {
		parent := filepath.Dir(final)
		if parent != dir {
			if err := mkdirAllSynced(dir, parent); err != nil {
				return mapErr(err, "fs put %s/%.64s", container, key)
			}
		}
		if createOnly {
			err = os.Link(tmp, final)
		} else {
			err = os.Rename(tmp, final)
		}
		if errors.Is(err, fs.ErrNotExist) && parent != dir && attempt < 5 {
			continue
		}
		if err == nil {
			s.cache.invalidatePath(dir, parent)
		}
		if err != nil {
			if createOnly && errors.Is(err, fs.ErrExist) {
				return drivers.Wrap(drivers.ErrPreconditionFailed, err, "fs put %s/%.64s: key exists", container, key)
			}
			return mapErr(err, "fs put %s/%.64s", container, key)
		}
		if err := syncDir(parent); err != nil {
			return mapErr(err, "fs put %s/%.64s: sync directory", container, key)
		}
		return nil
	}
}

// writeTemp writes data to a new temporary file in dir and syncs it.
func writeTemp(dir string, data []byte) (string, error) {
	name := filepath.Join(dir, ".tmp-"+randHex())
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return "", err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
		return "", err
	}
	return name, nil
}

func randHex() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// mkdirAllSynced creates the directories between base (which exists) and
// dir, and syncs each parent so that the new entries are durable.
func mkdirAllSynced(base, dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	rel, err := filepath.Rel(base, dir)
	if err != nil {
		return err
	}
	cur := base
	for _, seg := range strings.Split(rel, string(filepath.Separator)) {
		next := filepath.Join(cur, seg)
		err := os.Mkdir(next, 0o755)
		if err == nil {
			if err := syncDir(cur); err != nil {
				return err
			}
		} else if !errors.Is(err, fs.ErrExist) {
			return err
		}
		cur = next
	}
	return nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Get implements drivers.Store.
func (s *Store) Get(ctx context.Context, container, key string, opts *drivers.GetOptions) ([]byte, error) {
	if err := check(ctx, "get", container, key, true); err != nil {
		return nil, err
	}
	var r *drivers.Range
	if opts != nil {
		r = opts.Range
	}
	if err := drivers.ValidRange(r); err != nil {
		return nil, err
	}
	f, err := os.Open(s.path(container, key))
	if err != nil {
		return nil, mapErr(err, "fs get %s/%.64s", container, key)
	}
	defer f.Close()
	if r == nil {
		b, err := io.ReadAll(f)
		if err != nil {
			return nil, mapErr(err, "fs get %s/%.64s", container, key)
		}
		return b, nil
	}
	st, err := f.Stat()
	if err != nil {
		return nil, mapErr(err, "fs get %s/%.64s", container, key)
	}
	size := st.Size()
	if r.Offset >= size && size > 0 {
		return nil, drivers.Errorf(drivers.ErrInvalid, "fs get %s/%.64s: range offset %d past the end (%d bytes)", container, key, r.Offset, size)
	}
	n := size - r.Offset
	if r.Length > 0 && r.Length < n {
		n = r.Length
	}
	if n <= 0 {
		return []byte{}, nil
	}
	b := make([]byte, n)
	if _, err := f.ReadAt(b, r.Offset); err != nil {
		return nil, mapErr(err, "fs get %s/%.64s", container, key)
	}
	return b, nil
}

// Head implements drivers.Store.
func (s *Store) Head(ctx context.Context, container, key string) (drivers.Attrs, error) {
	if err := check(ctx, "head", container, key, true); err != nil {
		return drivers.Attrs{}, err
	}
	st, err := os.Stat(s.path(container, key))
	if err != nil {
		return drivers.Attrs{}, mapErr(err, "fs head %s/%.64s", container, key)
	}
	if st.IsDir() {
		return drivers.Attrs{}, drivers.Errorf(drivers.ErrNotFound, "fs head %s/%.64s", container, key)
	}
	return drivers.Attrs{Size: st.Size(), ModTime: st.ModTime()}, nil
}

// Delete implements drivers.Store.
func (s *Store) Delete(ctx context.Context, container, key string) error {
	return s.DeleteKeys(ctx, container, []string{key})
}

// DeleteKeys implements drivers.BatchDeleter: every key is unlinked, then
// each directory touched is synced once.
func (s *Store) DeleteKeys(ctx context.Context, container string, keys []string) error {
	if err := check(ctx, "delete", container, "", false); err != nil {
		return err
	}
	for _, k := range keys {
		if err := drivers.ValidKey(k); err != nil {
			return err
		}
	}
	base := s.dir(container)
	dirs := map[string]bool{}
	defer func() {
		for d := range dirs {
			s.cache.invalidatePath(base, d)
		}
	}()
	for _, k := range keys {
		p := s.path(container, k)
		err := os.Remove(p)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return mapErr(err, "fs delete %s/%.64s", container, k)
		}
		if err == nil {
			dirs[filepath.Dir(p)] = true
		}
	}
	for d := range dirs {
		// Drop the now empty directories of a long key, deepest first.
		for d != base && os.Remove(d) == nil {
			d = filepath.Dir(d)
		}
		if err := syncDir(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return mapErr(err, "fs delete in %s: sync directory", container)
		}
	}
	return nil
}

// CreateContainer implements drivers.Store.
func (s *Store) CreateContainer(ctx context.Context, container string) error {
	if err := check(ctx, "create container", container, "", false); err != nil {
		return err
	}
	err := os.Mkdir(s.dir(container), 0o755)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err == nil {
		err = syncDir(s.data)
	}
	if err != nil {
		return mapErr(err, "fs create container %s", container)
	}
	return nil
}

// DeleteContainer implements drivers.Store.
func (s *Store) DeleteContainer(ctx context.Context, container string) error {
	if err := check(ctx, "delete container", container, "", false); err != nil {
		return err
	}
	p, err := s.List(ctx, container, &drivers.ListOptions{Limit: 1})
	if errors.Is(err, drivers.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(p.Objects) > 0 {
		return drivers.Errorf(drivers.ErrPreconditionFailed, "fs delete container %s: not empty", container)
	}
	// Only empty directories (and stray files) remain.
	defer s.cache.invalidateTree(s.dir(container))
	if err := os.RemoveAll(s.dir(container)); err != nil {
		return mapErr(err, "fs delete container %s", container)
	}
	if err := syncDir(s.data); err != nil {
		return mapErr(err, "fs delete container %s: sync", container)
	}
	return nil
}

// ListContainers implements drivers.Store.
func (s *Store) ListContainers(ctx context.Context, opts *drivers.ListOptions) (drivers.Page, error) {
	if err := drivers.CtxErr(ctx, "fs list containers"); err != nil {
		return drivers.Page{}, err
	}
	o := drivers.CheckListOptions(opts)
	f, err := os.Open(s.data)
	if err != nil {
		return drivers.Page{}, mapErr(err, "fs list containers")
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return drivers.Page{}, mapErr(err, "fs list containers")
	}
	var infos []drivers.ObjectInfo
	for _, n := range names {
		if name, ok := decodeContainerName(n); ok {
			infos = append(infos, drivers.ObjectInfo{Key: name})
		}
	}
	return drivers.PageOf(infos, o), nil
}

// Capabilities implements drivers.Store.
func (s *Store) Capabilities() drivers.Capabilities {
	return drivers.Capabilities{Driver: "fs", CreateOnly: drivers.CreateOnlyAtomic, ConsistentList: true, BatchDelete: true}
}

// Close implements drivers.Store: it releases the data folder's lock.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.lock.Close() })
	return s.closeErr
}

var _ drivers.BatchDeleter = (*Store)(nil)
