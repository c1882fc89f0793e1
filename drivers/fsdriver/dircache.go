package fsdriver

import (
	"path/filepath"
	"strings"
	"sync"
)

// dirCache keeps the sorted, decoded names of large directories, so that
// paging through one (a project with thousands of queues) costs a binary
// search and the page, not a read and sort of the whole directory per
// page. It can be trusted because nothing else writes in a locked data
// folder: every put and delete of this Store invalidates the directories
// it changed, after changing them and before returning.
type dirCache struct {
	mu    sync.Mutex
	dirs  map[string]*cachedDir
	names int // names held by ready entries
}

// Only directories of at least minCachedNames names are kept (smaller ones
// cost little to read), and at most maxCachedNames names in all (about
// 100 bytes each).
const (
	minCachedNames = 64
	maxCachedNames = 1 << 17
)

type cachedDir struct {
	ents    []entry // sorted as walk wants them
	ready   bool
	dirty   bool // invalidated while a read was under way
	readers int  // reads under way
}

func newDirCache() *dirCache { return &dirCache{dirs: map[string]*cachedDir{}} }

// get returns the entries of dir, sorted, from the cache or from read.
func (c *dirCache) get(dir string, read func() ([]entry, error)) ([]entry, error) {
	if c == nil {
		return read()
	}
	c.mu.Lock()
	d := c.dirs[dir]
	if d != nil && d.ready {
		c.mu.Unlock()
		return d.ents, nil
	}
	if d == nil {
		d = &cachedDir{}
		c.dirs[dir] = d
	}
	d.readers++
	c.mu.Unlock()

	ents, err := read()

	c.mu.Lock()
	defer c.mu.Unlock()
	d.readers--
	// A read that overlapped an invalidation may have missed the change.
	if err == nil && !d.dirty && !d.ready && c.dirs[dir] == d && len(ents) >= minCachedNames {
		d.ents, d.ready = ents, true
		c.names += len(ents)
		c.evictLocked(dir)
	}
	if !d.ready && d.readers == 0 && c.dirs[dir] == d {
		delete(c.dirs, dir)
	}
	return ents, err
}

// evictLocked drops entries other than keep until the cache is within
// its bound.
func (c *dirCache) evictLocked(keep string) {
	for dir, d := range c.dirs {
		if c.names <= maxCachedNames {
			return
		}
		if dir != keep && d.ready {
			c.names -= len(d.ents)
			delete(c.dirs, dir)
		}
	}
}

// invalidate forgets dir (whose names changed, or may have).
func (c *dirCache) invalidate(dir string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.invalidateLocked(dir)
}

func (c *dirCache) invalidateLocked(dir string) {
	d := c.dirs[dir]
	switch {
	case d == nil:
	case d.ready:
		c.names -= len(d.ents)
		delete(c.dirs, dir)
	default:
		d.dirty = true
	}
}

// invalidatePath forgets every directory from base down to dir.
func (c *dirCache) invalidatePath(base, dir string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		c.invalidateLocked(dir)
		if len(dir) <= len(base) {
			return
		}
		dir = filepath.Dir(dir)
	}
}

// invalidateTree forgets base and every directory under it.
func (c *dirCache) invalidateTree(base string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for dir := range c.dirs { // deleting while ranging is allowed
		if dir == base || strings.HasPrefix(dir, base+string(filepath.Separator)) {
			c.invalidateLocked(dir)
		}
	}
}
