package index

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// The on-store format of a queue (docs/architecture.md has the long form).
//
// A log object holds the records of one group commit:
//
//	"CSTLOG01" | record* | uint32 count | uint32 crc32c(all before)
//	record = kind byte | uvarint len | payload (len bytes)
//
// A snapshot object holds the queue's index as of one log sequence:
//
//	"CSTSNP01" | payload | uint32 crc32c(all before)
//
// Integers inside payloads are uvarints (varints for times, which are Unix
// nanoseconds); strings and byte strings are a uvarint length and the bytes.
// Message bodies are stored verbatim in post records, so the index keeps
// only (log, offset, length) and reads a body back with one ranged GET.

const (
	logMagic  = "CSTLOG01"
	snapMagic = "CSTSNP03"
	// snapMagicV2 is the second snapshot format, still read: its bodies
	// are all in log objects (no body objects).
	snapMagicV2 = "CSTSNP02"
	// snapMagicV1 is the first snapshot format, still read: it has no
	// body checksums.
	snapMagicV1 = "CSTSNP01"
	trailer     = 8
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errCorrupt reports an object that does not decode.
var errCorrupt = errors.New("index: corrupt object")

type recKind byte

const (
	recPost    recKind = 1 // a message posted
	recDelete  recKind = 2 // messages deleted (by id, by pop, or moved away)
	recClaim   recKind = 3 // a claim made
	recRenew   recKind = 4 // a claim's ttl and grace updated
	recRelease recKind = 5 // a claim released
	recPurge   recKind = 6 // every message and claim dropped
	recMoving  recKind = 7 // messages on their way to the dead-letter queue
)

// postRec is a posted message. Origin, when set, names the message this
// one was moved from ("<queue gen>/<seq>"), so that a move repeated after a
// crash is recognised and not posted twice.
type postRec struct {
	Seq     uint64
	Created int64
	TTL     int64 // seconds
	Delay   int64 // seconds
	Client  string
	Origin  string
	Body    []byte
}

type claimRec struct {
	ID      string
	Created int64
	TTL     int64
	Grace   int64
	Seqs    []uint64
}

type renewRec struct {
	ID      string
	Updated int64
	TTL     int64
	Grace   int64
}

type movingRec struct {
	DLQ  string
	TTL  int64 // ttl in the dead-letter queue; 0 keeps the message's own
	Seqs []uint64
}

// logWriter accumulates records for one log object. Offsets it reports are
// absolute offsets in the finished object.
type logWriter struct {
	buf   []byte
	count uint32
}

func newLogWriter() *logWriter {
	return &logWriter{buf: append(make([]byte, 0, 4096), logMagic...)}
}

func (w *logWriter) len() int { return len(w.buf) }

// record appends one record; fill writes the payload and returns it.
func (w *logWriter) record(k recKind, payload []byte) {
	w.buf = append(w.buf, byte(k))
	w.buf = binary.AppendUvarint(w.buf, uint64(len(payload)))
	w.buf = append(w.buf, payload...)
	w.count++
}

// post appends a post record and returns the body's offset in the object.
func (w *logWriter) post(r *postRec) (bodyOff uint32) {
	p := make([]byte, 0, 48+len(r.Client)+len(r.Origin))
	p = binary.AppendUvarint(p, r.Seq)
	p = binary.AppendVarint(p, r.Created)
	p = binary.AppendVarint(p, r.TTL)
	p = binary.AppendVarint(p, r.Delay)
	p = appendString(p, r.Client)
	p = appendString(p, r.Origin)
	p = binary.AppendUvarint(p, uint64(len(r.Body)))
	w.buf = append(w.buf, byte(recPost))
	w.buf = binary.AppendUvarint(w.buf, uint64(len(p)+len(r.Body)))
	w.buf = append(w.buf, p...)
	off := uint32(len(w.buf))
	w.buf = append(w.buf, r.Body...)
	w.count++
	return off
}

func (w *logWriter) delete(seqs []uint64) { w.record(recDelete, appendSeqs(nil, seqs)) }

func (w *logWriter) claim(r *claimRec) {
	p := appendString(nil, r.ID)
	p = binary.AppendVarint(p, r.Created)
	p = binary.AppendVarint(p, r.TTL)
	p = binary.AppendVarint(p, r.Grace)
	w.record(recClaim, appendSeqs(p, r.Seqs))
}

func (w *logWriter) renew(r *renewRec) {
	p := appendString(nil, r.ID)
	p = binary.AppendVarint(p, r.Updated)
	p = binary.AppendVarint(p, r.TTL)
	p = binary.AppendVarint(p, r.Grace)
	w.record(recRenew, p)
}

func (w *logWriter) release(id string) { w.record(recRelease, appendString(nil, id)) }

func (w *logWriter) purge() { w.record(recPurge, nil) }

func (w *logWriter) moving(r *movingRec) {
	p := appendString(nil, r.DLQ)
	p = binary.AppendVarint(p, r.TTL)
	w.record(recMoving, appendSeqs(p, r.Seqs))
}

// finish returns the object's bytes; the writer must not be used after.
func (w *logWriter) finish() []byte {
	w.buf = binary.BigEndian.AppendUint32(w.buf, w.count)
	return binary.BigEndian.AppendUint32(w.buf, crc32.Checksum(w.buf, castagnoli))
}

func appendString(p []byte, s string) []byte {
	p = binary.AppendUvarint(p, uint64(len(s)))
	return append(p, s...)
}

func appendSeqs(p []byte, seqs []uint64) []byte {
	p = binary.AppendUvarint(p, uint64(len(seqs)))
	prev := uint64(0)
	for _, s := range seqs { // deltas keep runs of neighbours small
		p = binary.AppendVarint(p, int64(s-prev))
		prev = s
	}
	return p
}

// logRecord is one decoded record; exactly one of its pointers is set
// (none for a purge).
type logRecord struct {
	Kind    recKind
	Post    *postRec
	BodyOff uint32
	Seqs    []uint64 // delete
	Claim   *claimRec
	Renew   *renewRec
	Release string
	Moving  *movingRec
}

// decodeLog checks and decodes a log object. Bodies alias data.
func decodeLog(data []byte) ([]logRecord, error) {
	if len(data) < len(logMagic)+trailer || string(data[:len(logMagic)]) != logMagic {
		return nil, fmt.Errorf("%w: not a log object", errCorrupt)
	}
	end := len(data) - trailer
	if crc32.Checksum(data[:end+4], castagnoli) != binary.BigEndian.Uint32(data[end+4:]) {
		return nil, fmt.Errorf("%w: log checksum mismatch", errCorrupt)
	}
	count := binary.BigEndian.Uint32(data[end:])
	// Each record takes two bytes at least: a count past that is a lie,
	// and would size the slice below by the liar's number.
	if uint64(count) > uint64(end-len(logMagic))/2 {
		return nil, fmt.Errorf("%w: record count %d", errCorrupt, count)
	}
	recs := make([]logRecord, 0, count)
	d := decoder{b: data[:end], off: len(logMagic)}
	for d.off < end {
		kind := recKind(d.byte())
		n := d.uvarint()
		if d.err != nil || n > uint64(end-d.off) {
			return nil, fmt.Errorf("%w: record at %d", errCorrupt, d.off)
		}
		start := d.off
		p := decoder{b: data[:start+int(n)], off: start}
		r := logRecord{Kind: kind}
		switch kind {
		case recPost:
			pr := &postRec{Seq: p.uvarint(), Created: p.varint(), TTL: p.varint(), Delay: p.varint(),
				Client: p.string(), Origin: p.string()}
			bl := p.uvarint()
			if p.err == nil && bl == uint64(len(p.b)-p.off) {
				r.BodyOff = uint32(p.off)
				pr.Body = p.b[p.off:]
				p.off = len(p.b)
			} else {
				p.fail()
			}
			r.Post = pr
		case recDelete:
			r.Seqs = p.seqs()
		case recClaim:
			r.Claim = &claimRec{ID: p.string(), Created: p.varint(), TTL: p.varint(), Grace: p.varint(), Seqs: p.seqs()}
		case recRenew:
			r.Renew = &renewRec{ID: p.string(), Updated: p.varint(), TTL: p.varint(), Grace: p.varint()}
		case recRelease:
			r.Release = p.string()
		case recPurge:
		case recMoving:
			r.Moving = &movingRec{DLQ: p.string(), TTL: p.varint(), Seqs: p.seqs()}
		default:
			return nil, fmt.Errorf("%w: unknown record kind %d", errCorrupt, kind)
		}
		if p.err != nil || p.off != len(p.b) {
			return nil, fmt.Errorf("%w: record of kind %d at %d", errCorrupt, kind, start)
		}
		d.off = start + int(n)
		recs = append(recs, r)
	}
	if uint32(len(recs)) != count {
		return nil, fmt.Errorf("%w: %d records, trailer says %d", errCorrupt, len(recs), count)
	}
	return recs, nil
}

// decoder reads the encodings above; the first error sticks.
type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errCorrupt
	}
	d.off = len(d.b)
}

func (d *decoder) byte() byte {
	if d.off >= len(d.b) {
		d.fail()
		return 0
	}
	d.off++
	return d.b[d.off-1]
}

func (d *decoder) uint32() uint32 {
	if d.err != nil || len(d.b)-d.off < 4 {
		d.fail()
		return 0
	}
	d.off += 4
	return binary.BigEndian.Uint32(d.b[d.off-4:])
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.fail()
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b[d.off:])
	if n <= 0 {
		d.fail()
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)-d.off) {
		d.fail()
		return nil
	}
	b := d.b[d.off : d.off+int(n)]
	d.off += int(n)
	return b
}

func (d *decoder) string() string { return string(d.bytes()) }

func (d *decoder) seqs() []uint64 {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)-d.off) { // each takes a byte at least
		d.fail()
		return nil
	}
	s := make([]uint64, n)
	prev := uint64(0)
	for i := range s {
		prev += uint64(d.varint())
		s[i] = prev
	}
	return s
}
