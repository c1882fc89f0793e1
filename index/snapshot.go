package index

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"slices"
)

// encodeSnapshot writes s as of log logSeq. Claims and clients are
// renumbered densely; expired claims (as of now) are left out.
func encodeSnapshot(s *state, logSeq uint64, now int64) []byte {
	b := make([]byte, 0, 64+s.msgs.live*40)
	b = append(b, snapMagic...)
	b = binary.AppendUvarint(b, logSeq)
	b = binary.AppendUvarint(b, s.nextSeq)

	claimIx := map[uint32]uint64{}
	var claims []uint32
	clientIx := map[uint32]uint64{}
	var clients []uint32
	s.msgs.each(0, func(m *msg) bool {
		if m.claim != 0 && s.claims[m.claim].expires > now {
			if _, ok := claimIx[m.claim]; !ok {
				claimIx[m.claim] = uint64(len(claims)) + 1
				claims = append(claims, m.claim)
			}
		}
		if _, ok := clientIx[m.client]; !ok {
			clientIx[m.client] = uint64(len(clients))
			clients = append(clients, m.client)
		}
		return true
	})
	b = binary.AppendUvarint(b, uint64(len(clients)))
	for _, c := range clients {
		b = appendString(b, s.clients[c])
	}
	b = binary.AppendUvarint(b, uint64(len(claims)))
	for _, i := range claims {
		c := &s.claims[i]
		b = appendString(b, c.id)
		b = binary.AppendVarint(b, c.created)
		b = binary.AppendVarint(b, c.expires)
		b = binary.AppendVarint(b, c.ttl)
		b = binary.AppendVarint(b, c.grace)
	}
	b = binary.AppendUvarint(b, uint64(s.msgs.live))
	prev := uint64(0)
	s.msgs.each(0, func(m *msg) bool {
		b = binary.AppendUvarint(b, m.seq-prev)
		prev = m.seq
		b = binary.AppendVarint(b, m.created)
		b = binary.AppendVarint(b, m.expires-m.created)
		b = binary.AppendVarint(b, m.visibleAt-m.created)
		b = binary.AppendUvarint(b, m.bodyLog)
		b = binary.AppendUvarint(b, uint64(m.bodyOff))
		b = binary.AppendUvarint(b, uint64(m.bodyLen))
		b = binary.AppendUvarint(b, claimIx[m.claim]) // 0 when none or expired
		b = binary.AppendUvarint(b, clientIx[m.client])
		b = binary.AppendUvarint(b, uint64(m.claimCount))
		b = append(b, m.flags&(flagMoving|flagBodyCRC|flagBodyObj))
		if m.flags&flagBodyCRC != 0 {
			b = binary.BigEndian.AppendUint32(b, m.bodyCRC)
		}
		return true
	})
	var origins []string
	for o, q := range s.origins {
		if s.msgs.find(q) != nil {
			origins = append(origins, o)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(origins)))
	for _, o := range origins {
		b = appendString(b, o)
		b = binary.AppendUvarint(b, s.origins[o])
	}
	b = binary.AppendUvarint(b, uint64(len(s.moving)))
	for q, t := range s.moving {
		b = binary.AppendUvarint(b, q)
		b = appendString(b, t.dlq)
		b = binary.AppendVarint(b, t.ttl)
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// decodeSnapshot rebuilds a state from a snapshot and returns the log
// sequence it stands for.
func decodeSnapshot(data []byte) (*state, uint64, error) {
	if len(data) < len(snapMagic)+4 {
		return nil, 0, fmt.Errorf("%w: not a snapshot", errCorrupt)
	}
	flagsKept := flagMoving | flagBodyCRC | flagBodyObj
	switch string(data[:len(snapMagic)]) {
	case snapMagic:
	case snapMagicV2:
		flagsKept = flagMoving | flagBodyCRC
	case snapMagicV1:
		flagsKept = flagMoving
	default:
		return nil, 0, fmt.Errorf("%w: not a snapshot", errCorrupt)
	}
	end := len(data) - 4
	if crc32.Checksum(data[:end], castagnoli) != binary.BigEndian.Uint32(data[end:]) {
		return nil, 0, fmt.Errorf("%w: snapshot checksum mismatch", errCorrupt)
	}
	d := decoder{b: data[:end], off: len(snapMagic)}
	s := newState()
	logSeq := d.uvarint()
	s.nextSeq = d.uvarint()
	nClients := d.uvarint()
	if nClients > uint64(end) {
		d.fail()
	}
	for i := uint64(0); i < nClients && d.err == nil; i++ {
		s.internClient(d.string())
	}
	nClaims := d.uvarint()
	if nClaims > uint64(end-d.off)/5 { // a claim takes five bytes at least
		d.fail()
		nClaims = 0
	}
	claimSlot := make([]uint32, 0, nClaims+1)
	claimSlot = append(claimSlot, 0)
	s.claims = slices.Grow(s.claims, int(nClaims))
	for i := uint64(0); i < nClaims && d.err == nil; i++ {
		c := claim{id: d.string(), created: d.varint(), expires: d.varint(), ttl: d.varint(), grace: d.varint()}
		if _, dup := s.claimIDs[c.id]; dup {
			// Two claims under one id: a lookup by id would find only one.
			d.fail()
			break
		}
		claimSlot = append(claimSlot, s.newClaimSlot(c))
	}
	nMsgs := d.uvarint()
	if nMsgs > uint64(end) {
		d.fail()
	}
	prev := uint64(0)
	for i := uint64(0); i < nMsgs && d.err == nil; i++ {
		delta := d.uvarint()
		if delta == 0 || prev+delta < prev || prev+delta == math.MaxUint64 { // seqs strictly increase, below nextSeq
			d.fail()
			break
		}
		m := msg{seq: prev + delta}
		prev = m.seq
		m.created = d.varint()
		m.expires = m.created + d.varint()
		m.visibleAt = m.created + d.varint()
		m.bodyLog = d.uvarint()
		m.bodyOff = uint32(d.uvarint())
		m.bodyLen = uint32(d.uvarint())
		ci := d.uvarint()
		cl := d.uvarint()
		m.claimCount = uint16(d.uvarint())
		m.flags = d.byte() & flagsKept
		if m.flags&flagBodyCRC != 0 {
			m.bodyCRC = d.uint32()
		}
		if ci >= uint64(len(claimSlot)) || cl >= uint64(len(s.clients)) {
			d.fail()
			break
		}
		m.claim = claimSlot[ci]
		m.client = uint32(cl)
		if m.claim != 0 {
			s.claims[m.claim].seqs = append(s.claims[m.claim].seqs, m.seq)
		}
		s.logLive[m.bodyLog]++
		s.msgs.append(m)
	}
	if prev >= s.nextSeq {
		// nextSeq is past every message the engine wrote; one that is not
		// would hand out the id of a live message again.
		s.nextSeq = prev + 1
	}
	nOrigins := d.uvarint()
	for i := uint64(0); i < nOrigins && d.err == nil; i++ {
		o := d.string()
		s.origins[o] = d.uvarint()
	}
	nMoving := d.uvarint()
	for i := uint64(0); i < nMoving && d.err == nil; i++ {
		q := d.uvarint()
		s.moving[q] = movingTarget{dlq: d.string(), ttl: d.varint()}
	}
	if d.err != nil || d.off != end {
		return nil, 0, fmt.Errorf("%w: snapshot body", errCorrupt)
	}
	// Claims that no message refers to are of no use.
	for i := 1; i < len(s.claims); i++ {
		if s.claims[i].id != "" && len(s.claims[i].seqs) == 0 {
			s.dropClaim(uint32(i))
		}
	}
	return s, logSeq, nil
}
