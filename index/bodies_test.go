package index

import (
	"runtime"
	"testing"
)

func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// The cache's byte bound counts what an entry really holds, so that a
// flood of tiny bodies stays within it: the heap the entries take is
// within a quarter of what the cache counts.
func TestBodyCacheAccountsOverhead(t *testing.T) {
	const n = 50_000
	c := newBodyCache(1 << 40) // large enough that nothing is evicted
	bodies := make([][]byte, n)
	for i := range bodies {
		bodies[i] = make([]byte, 8)
	}
	before := heapInUse()
	for i := range n {
		c.add(bodyKey{"q-x", uint64(i)}, bodies[i])
	}
	used := heapInUse() - before
	runtime.KeepAlive(c)
	bodyBytes := int64(n * 8)
	counted := c.bytes - bodyBytes // the bodies were allocated before
	if float64(used) > 1.25*float64(counted) {
		t.Errorf("%d entries hold %d B of heap beyond their bodies, the cache counts %d B (%.0f B/entry real, %d counted)",
			n, used, counted, float64(used)/n, entryOverhead)
	}
	t.Logf("%.0f B/entry real, %d counted", float64(used)/n, entryOverhead)
}

func TestBodyCacheBoundsEntries(t *testing.T) {
	c := newBodyCache(64 << 10)
	for i := range 10_000 {
		c.add(bodyKey{"q-x", uint64(i)}, []byte("tiny"))
	}
	if held := int64(c.c.Len()) * entryCost([]byte("tiny")); held > 64<<10 {
		t.Errorf("%d tiny entries cost %d B, over the 64 KiB bound", c.c.Len(), held)
	}
}

func TestBodyCacheReplaces(t *testing.T) {
	c := newBodyCache(1 << 20)
	k := bodyKey{"q-x", 7}
	c.add(k, []byte("first"))
	c.add(k, []byte("second body"))
	if got, _ := c.get(k); string(got) != "second body" {
		t.Errorf("get = %q, want the later body", got)
	}
	if want := entryCost([]byte("second body")); c.bytes != want {
		t.Errorf("bytes = %d, want %d", c.bytes, want)
	}
}
