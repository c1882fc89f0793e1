package index

import (
	"hash/crc32"
	"math"
	"sort"
)

// msg is one live message in the index. It holds no pointers, so that a
// queue of a million messages costs the garbage collector nothing to scan.
type msg struct {
	seq        uint64
	created    int64 // Unix ns
	expires    int64 // Unix ns
	visibleAt  int64 // Unix ns: created + delay
	bodyLog    uint64
	bodyOff    uint32
	bodyLen    uint32
	bodyCRC    uint32 // CRC-32C of the body, when flagBodyCRC is set
	claim      uint32 // index into state.claims; 0: none
	client     uint32 // index into state.clients
	claimCount uint16
	flags      uint8
}

const (
	flagDeleted uint8 = 1 << iota
	flagMoving        // on its way to the dead-letter queue
	// flagBodyCRC: bodyCRC holds the body's checksum, taken from the
	// post (whose log object's checksum was verified), so a body read
	// back by a ranged GET is checked. Snapshots of the first format did
	// not carry it.
	flagBodyCRC
	// flagJournal: the message was posted through the node's journal
	// (journal.go) and not folded yet: bodyLog is its batch, and the
	// body is held in state.pinned until a fold copies it into a body
	// object. Never in a snapshot.
	flagJournal
	// flagBodyObj: the body is in the queue's body object bodyLog
	// (body/<seq>, written by a fold) rather than in log object bodyLog.
	flagBodyObj
)

// chunk is a run of messages in sequence order.
type chunk struct {
	msgs []msg
	live int
}

// A chunk holds at most chunkCap messages. The newest chunk starts with
// room for firstChunkCap and doubles as it fills, so that a queue holding
// one message costs a few hundred bytes, not a full chunk.
const (
	chunkCap      = 4096
	firstChunkCap = 4
)

// msgList keeps messages ordered by seq in chunks, so that appending never
// copies the whole queue and whole chunks drop out as messages are consumed.
type msgList struct {
	chunks []*chunk
	live   int
}

// append adds m after every message in the list. Growing the newest chunk
// moves it, so *msg pointers into the list are stale after an append (as
// after remove).
func (l *msgList) append(m msg) *msg {
	var c *chunk
	if n := len(l.chunks); n > 0 && len(l.chunks[n-1].msgs) < chunkCap {
		c = l.chunks[n-1]
		if len(c.msgs) == cap(c.msgs) {
			grown := make([]msg, len(c.msgs), min(2*cap(c.msgs), chunkCap))
			copy(grown, c.msgs)
			c.msgs = grown
		}
	} else {
		c = &chunk{msgs: make([]msg, 0, firstChunkCap)}
		l.chunks = append(l.chunks, c)
	}
	c.msgs = append(c.msgs, m)
	c.live++
	l.live++
	return &c.msgs[len(c.msgs)-1]
}

// find returns the live message with seq, or nil.
func (l *msgList) find(seq uint64) *msg {
	i := sort.Search(len(l.chunks), func(i int) bool {
		c := l.chunks[i].msgs
		return c[len(c)-1].seq >= seq
	})
	if i == len(l.chunks) {
		return nil
	}
	c := l.chunks[i].msgs
	j := sort.Search(len(c), func(j int) bool { return c[j].seq >= seq })
	if j < len(c) && c[j].seq == seq && c[j].flags&flagDeleted == 0 {
		return &c[j]
	}
	return nil
}

// remove marks m deleted and drops chunks that hold nothing live. It may
// compact m's chunk, so other *msg pointers into the list are stale after.
func (l *msgList) remove(m *msg) {
	if m.flags&flagDeleted != 0 {
		return
	}
	m.flags |= flagDeleted
	l.live--
	i := sort.Search(len(l.chunks), func(i int) bool {
		c := l.chunks[i].msgs
		return c[len(c)-1].seq >= m.seq
	})
	if i == len(l.chunks) {
		return
	}
	c := l.chunks[i]
	c.live--
	switch {
	case c.live == 0 && (len(c.msgs) == chunkCap || i < len(l.chunks)-1):
		l.chunks = append(l.chunks[:i], l.chunks[i+1:]...)
	case c.live > 0 && c.live < len(c.msgs)/4 && i < len(l.chunks)-1:
		// Mostly dead and no longer appended to: keep only the live ones.
		live := make([]msg, 0, c.live)
		for _, x := range c.msgs {
			if x.flags&flagDeleted == 0 {
				live = append(live, x)
			}
		}
		c.msgs = live
	}
}

// each calls f for every live message at or after seq from, in order,
// until f returns false. f may not add or remove messages.
func (l *msgList) each(from uint64, f func(m *msg) bool) {
	i := sort.Search(len(l.chunks), func(i int) bool {
		c := l.chunks[i].msgs
		return c[len(c)-1].seq >= from
	})
	for ; i < len(l.chunks); i++ {
		c := l.chunks[i].msgs
		j := sort.Search(len(c), func(j int) bool { return c[j].seq >= from })
		for ; j < len(c); j++ {
			if c[j].flags&flagDeleted == 0 && !f(&c[j]) {
				return
			}
		}
	}
}

// claim is one live lease.
type claim struct {
	id      string
	created int64
	expires int64 // Unix ns
	ttl     int64 // seconds
	grace   int64 // seconds
	seqs    []uint64
}

// state is a queue's index: everything a log replay rebuilds.
type state struct {
	msgs     msgList
	nextSeq  uint64 // seq of the next message posted
	claims   []claim
	freeCl   []uint32
	claimIDs map[string]uint32
	clients  []string
	clientIx map[string]uint32
	// logLive counts live messages whose body is in each log object; a log
	// object older than the newest snapshot with no entry here is garbage.
	logLive map[uint64]int
	// origins maps moved-in messages to their seq here, so a move repeated
	// after a crash does not post twice.
	origins map[string]uint64
	// moving lists messages recorded as moving to a dead-letter queue and
	// not yet deleted here: recovery finishes their move.
	moving map[uint64]movingTarget
	// pinned holds the bodies of live messages whose body is only in the
	// journal (flagJournal), until a fold copies them into a body object;
	// pinnedBytes is what they weigh.
	pinned      map[uint64][]byte
	pinnedBytes int
}

type movingTarget struct {
	dlq string
	ttl int64
}

func newState() *state {
	return &state{
		nextSeq:  1,
		claims:   make([]claim, 1), // index 0 means "no claim"
		claimIDs: map[string]uint32{},
		clientIx: map[string]uint32{},
		logLive:  map[uint64]int{},
		origins:  map[string]uint64{},
		moving:   map[uint64]movingTarget{},
		pinned:   map[uint64][]byte{},
	}
}

// pin marks m, just posted through the journal, as holding its body in
// memory until the next fold: its log object is a journal section, which
// garbage collection of the queue's own objects does not count.
func (s *state) pin(m *msg, body []byte) {
	s.unlive(m.bodyLog)
	m.flags |= flagJournal
	s.pinned[m.seq] = body
	s.pinnedBytes += len(body)
}

// unlive uncounts one live body in log (or body) object seq.
func (s *state) unlive(seq uint64) {
	if n := s.logLive[seq] - 1; n > 0 {
		s.logLive[seq] = n
	} else {
		delete(s.logLive, seq)
	}
}

func (s *state) internClient(c string) uint32 {
	if i, ok := s.clientIx[c]; ok {
		return i
	}
	i := uint32(len(s.clients))
	s.clients = append(s.clients, c)
	s.clientIx[c] = i
	return i
}

// liveClaim returns m's claim if it has one that has not expired at now.
func (s *state) liveClaim(m *msg, now int64) *claim {
	if m.claim == 0 {
		return nil
	}
	c := &s.claims[m.claim]
	if c.expires <= now {
		return nil
	}
	return c
}

// findClaim returns the live claim with id, or nil.
func (s *state) findClaim(id string, now int64) *claim {
	i, ok := s.claimIDs[id]
	if !ok || s.claims[i].expires <= now {
		return nil
	}
	return &s.claims[i]
}

// applyPost adds a posted message.
func (s *state) applyPost(p *postRec, logSeq uint64, bodyOff uint32) *msg {
	m := msg{
		seq:       p.Seq,
		created:   p.Created,
		expires:   p.Created + p.TTL*1e9,
		visibleAt: p.Created + p.Delay*1e9,
		bodyLog:   logSeq,
		bodyOff:   bodyOff,
		bodyLen:   uint32(len(p.Body)),
		bodyCRC:   crc32.Checksum(p.Body, castagnoli),
		flags:     flagBodyCRC,
		client:    s.internClient(p.Client),
	}
	if p.Seq >= s.nextSeq {
		s.nextSeq = p.Seq + 1
	}
	s.logLive[logSeq]++
	if p.Origin != "" {
		s.origins[p.Origin] = p.Seq
	}
	return s.msgs.append(m)
}

// removeMsg drops m from the index and from whatever refers to it.
func (s *state) removeMsg(m *msg) {
	if m.claim != 0 {
		c := &s.claims[m.claim]
		for i, q := range c.seqs {
			if q == m.seq {
				c.seqs = append(c.seqs[:i], c.seqs[i+1:]...)
				break
			}
		}
		if len(c.seqs) == 0 {
			s.dropClaim(m.claim)
		}
		m.claim = 0
	}
	if m.flags&flagJournal != 0 {
		s.pinnedBytes -= len(s.pinned[m.seq])
		delete(s.pinned, m.seq)
	} else {
		s.unlive(m.bodyLog)
	}
	delete(s.moving, m.seq)
	s.msgs.remove(m)
}

func (s *state) applyDelete(seqs []uint64) {
	for _, q := range seqs {
		if m := s.msgs.find(q); m != nil {
			s.removeMsg(m)
		}
	}
}

// newClaimSlot stores c and returns its index.
func (s *state) newClaimSlot(c claim) uint32 {
	var i uint32
	if n := len(s.freeCl); n > 0 {
		i = s.freeCl[n-1]
		s.freeCl = s.freeCl[:n-1]
		s.claims[i] = c
	} else {
		i = uint32(len(s.claims))
		s.claims = append(s.claims, c)
	}
	s.claimIDs[c.id] = i
	return i
}

func (s *state) dropClaim(i uint32) {
	c := &s.claims[i]
	for _, q := range c.seqs {
		if m := s.msgs.find(q); m != nil && m.claim == i {
			m.claim = 0
		}
	}
	delete(s.claimIDs, c.id)
	*c = claim{}
	s.freeCl = append(s.freeCl, i)
}

// applyClaim records a claim on the messages that are still there. Each
// claimed message's life is stretched to outlast the claim by its grace,
// and its claim count goes up.
func (s *state) applyClaim(r *claimRec) {
	if i, ok := s.claimIDs[r.ID]; ok {
		s.dropClaim(i)
	}
	c := claim{id: r.ID, created: r.Created, ttl: r.TTL, grace: r.Grace, expires: r.Created + r.TTL*1e9}
	i := s.newClaimSlot(c)
	seqs := make([]uint64, 0, len(r.Seqs))
	for _, q := range r.Seqs {
		m := s.msgs.find(q)
		if m == nil {
			continue
		}
		if m.claim != 0 && m.claim != i {
			// A claim the log shows as expired by now; detach it.
			old := &s.claims[m.claim]
			for k, x := range old.seqs {
				if x == q {
					old.seqs = append(old.seqs[:k], old.seqs[k+1:]...)
					break
				}
			}
			if len(old.seqs) == 0 {
				s.dropClaim(m.claim)
			}
		}
		m.claim = i
		if m.claimCount < 1<<16-1 {
			m.claimCount++
		}
		if end := c.expires + r.Grace*1e9; m.expires < end {
			m.expires = end
		}
		seqs = append(seqs, q)
	}
	s.claims[i].seqs = seqs
	if len(seqs) == 0 {
		s.dropClaim(i)
	}
}

func (s *state) applyRenew(r *renewRec) {
	i, ok := s.claimIDs[r.ID]
	if !ok {
		return
	}
	c := &s.claims[i]
	c.ttl, c.grace = r.TTL, r.Grace
	c.expires = r.Updated + r.TTL*1e9
	end := c.expires + r.Grace*1e9
	for _, q := range c.seqs {
		if m := s.msgs.find(q); m != nil && m.expires < end {
			m.expires = end
		}
	}
}

func (s *state) applyRelease(id string) {
	if i, ok := s.claimIDs[id]; ok {
		s.dropClaim(i)
	}
}

func (s *state) applyPurge() {
	var all []uint64
	s.msgs.each(0, func(m *msg) bool { all = append(all, m.seq); return true })
	s.applyDelete(all)
	for _, i := range s.claimIDs {
		s.dropClaim(i)
	}
}

func (s *state) applyMoving(r *movingRec) {
	for _, q := range r.Seqs {
		if m := s.msgs.find(q); m != nil {
			m.flags |= flagMoving
			if m.claim != 0 {
				c := &s.claims[m.claim]
				for k, x := range c.seqs {
					if x == q {
						c.seqs = append(c.seqs[:k], c.seqs[k+1:]...)
						break
					}
				}
				if len(c.seqs) == 0 {
					s.dropClaim(m.claim)
				}
				m.claim = 0
			}
			s.moving[q] = movingTarget{dlq: r.DLQ, ttl: r.TTL}
		}
	}
}

// apply replays one decoded record of log logSeq.
func (s *state) apply(r *logRecord, logSeq uint64) {
	switch r.Kind {
	case recPost:
		// The engine numbers posts in log order, so a post below nextSeq
		// comes from a damaged object; taking it would break the order
		// the message list relies on and give two messages one id.
		if r.Post.Seq >= s.nextSeq && r.Post.Seq < math.MaxUint64 {
			s.applyPost(r.Post, logSeq, r.BodyOff)
		}
	case recDelete:
		s.applyDelete(r.Seqs)
	case recClaim:
		s.applyClaim(r.Claim)
	case recRenew:
		s.applyRenew(r.Renew)
	case recRelease:
		s.applyRelease(r.Release)
	case recPurge:
		s.applyPurge()
	case recMoving:
		s.applyMoving(r.Moving)
	}
}

// sweep drops messages whose TTL has passed and claims that have expired,
// as of now. Nothing is logged: replay derives the same expiry from the
// records.
func (s *state) sweep(now int64) (expired int) {
	// Collect seqs, not pointers: removing may compact a chunk.
	var dead []uint64
	s.msgs.each(0, func(m *msg) bool {
		if m.expires <= now && m.flags&flagMoving == 0 {
			dead = append(dead, m.seq)
		}
		return true
	})
	s.applyDelete(dead)
	for i := 1; i < len(s.claims); i++ {
		if s.claims[i].id != "" && s.claims[i].expires <= now {
			s.dropClaim(uint32(i))
		}
	}
	return len(dead)
}
