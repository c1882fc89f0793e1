package index

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"sort"
	"sync"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/cistern-mq/cistern/drivers"
)

// bodyLoc says where a message body lives: a byte range of a log object
// or of a body object, or in memory while it is only in the journal.
type bodyLoc struct {
	container string
	log       uint64
	inBodyObj bool // log names a body object (body/<seq>), not a log
	off, size uint32
	seq       uint64
	crc       uint32
	checked   bool   // crc holds the body's CRC-32C
	mem       []byte // the body itself, when held in memory
	inMem     bool
}

// key is the object the body is in.
func (l bodyLoc) key() string {
	if l.inBodyObj {
		return bodyObjectKey(l.log)
	}
	return logKey(l.log)
}

// bodyLoc says where m's body is. Callers hold q.mu.
func (q *queue) bodyLoc(m *msg) bodyLoc {
	l := bodyLoc{container: q.container, log: m.bodyLog, inBodyObj: m.flags&flagBodyObj != 0,
		off: m.bodyOff, size: m.bodyLen, seq: m.seq, crc: m.bodyCRC, checked: m.flags&flagBodyCRC != 0}
	if m.flags&flagJournal != 0 {
		l.mem, l.inMem = q.st.pinned[m.seq], true
	} else if body, ok := q.folding[m.seq]; ok {
		l.mem, l.inMem = body, true
	}
	if l.inMem && l.mem == nil {
		l.mem = []byte{}
	}
	return l
}

type bodyKey struct {
	container string
	seq       uint64
}

// bodyCache is an LRU of message bodies bounded by the bytes it really
// holds: each entry counts its body plus entryOverhead, the key, the LRU's
// list element and map slot (measured by TestBodyCacheAccountsOverhead), so
// that a flood of tiny bodies cannot hold many times the bound.
type bodyCache struct {
	mu    sync.Mutex
	c     *lru.Cache[bodyKey, []byte]
	bytes int64
	max   int64
}

// entryOverhead is what one cached body costs beyond its own bytes.
const entryOverhead = 224

func newBodyCache(maxBytes int64) *bodyCache {
	b := &bodyCache{max: maxBytes}
	// The count bound is only a backstop; bytes decide.
	c, _ := lru.NewWithEvict(1<<22, func(_ bodyKey, v []byte) { b.bytes -= entryCost(v) })
	b.c = c
	return b
}

func entryCost(body []byte) int64 { return int64(cap(body)) + entryOverhead }

// add caches body under k, replacing what k held: a sequence number is
// never reused for another body (burnedSeqs), but the cache does not rely
// on that. body must not share its array with anything larger.
func (b *bodyCache) add(k bodyKey, body []byte) {
	if entryCost(body) > b.max/16 {
		return // one huge body would flush everything else
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.c.Remove(k) // the eviction callback uncounts what was there
	b.c.Add(k, body)
	b.bytes += entryCost(body)
	for b.bytes > b.max {
		b.c.RemoveOldest()
	}
}

func (b *bodyCache) get(k bodyKey) ([]byte, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.c.Get(k)
}

func (b *bodyCache) remove(k bodyKey) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.c.Remove(k)
}

// readBody returns one body, from the cache or with a ranged read.
func (e *Engine) readBody(ctx context.Context, l bodyLoc) ([]byte, error) {
	bodies, err := e.readBodies(ctx, []bodyLoc{l})
	if err != nil {
		return nil, err
	}
	return bodies[0], nil
}

// spanLimit bounds how far apart two bodies of one log object may lie to be
// fetched with one ranged read.
const spanLimit = 1 << 20

// readBodies returns the bodies at locs, in order. Bodies not in the cache
// are read with ranged GETs, one per run of nearby bodies of the same log
// object, so a claim of 20 messages posted together costs one read. A body
// whose log object is gone (the message was deleted meanwhile) comes back
// nil.
func (e *Engine) readBodies(ctx context.Context, locs []bodyLoc) ([][]byte, error) {
	out := make([][]byte, len(locs))
	var miss []int
	for i, l := range locs {
		if l.inMem {
			out[i] = l.mem
		} else if b, ok := e.bodies.get(bodyKey{l.container, l.seq}); ok {
			out[i] = b
		} else if l.size == 0 {
			out[i] = []byte{}
		} else {
			miss = append(miss, i)
		}
	}
	sort.Slice(miss, func(a, b int) bool {
		la, lb := locs[miss[a]], locs[miss[b]]
		if la.container != lb.container || la.key() != lb.key() {
			return la.container < lb.container || la.container == lb.container && la.key() < lb.key()
		}
		return la.off < lb.off
	})
	for start := 0; start < len(miss); {
		first := locs[miss[start]]
		end := start + 1
		hi := int64(first.off) + int64(first.size)
		for end < len(miss) {
			l := locs[miss[end]]
			if l.container != first.container || l.key() != first.key() || int64(l.off)+int64(l.size)-int64(first.off) > spanLimit {
				break
			}
			hi = max(hi, int64(l.off)+int64(l.size))
			end++
		}
		data, err := e.store.Get(ctx, first.container, first.key(),
			&drivers.GetOptions{Range: &drivers.Range{Offset: int64(first.off), Length: hi - int64(first.off)}})
		if err != nil && !errors.Is(err, drivers.ErrNotFound) {
			return nil, err
		}
		if err == nil && int64(len(data)) != hi-int64(first.off) {
			// A live body's object is there but the read came back short
			// (torn on its way): never serve what is left as the body.
			return nil, fmt.Errorf("%w: %s/%s: read %d bytes of %d", drivers.ErrUnavailable,
				first.container, first.key(), len(data), hi-int64(first.off))
		}
		for _, i := range miss[start:end] {
			l := locs[i]
			lo := int64(l.off) - int64(first.off)
			if err != nil {
				continue // gone: deleted and collected meanwhile
			}
			// A copy: a sub-slice would keep the whole ranged read (up
			// to spanLimit) alive for as long as the body is cached.
			body := bytes.Clone(data[lo : lo+int64(l.size)])
			if l.checked && crc32.Checksum(body, castagnoli) != l.crc {
				return nil, fmt.Errorf("%w: %s/%s: body of message %d does not match its checksum", drivers.ErrUnavailable,
					l.container, l.key(), l.seq)
			}
			out[i] = body
			e.bodies.add(bodyKey{l.container, l.seq}, body)
		}
		start = end
	}
	return out, nil
}
