package index

import (
	"encoding/binary"
	"errors"
	"runtime"
	"testing"
)

// allocated is how many bytes f allocates.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// A hostile count or length in an object that passes its checksum must not
// make a decoder allocate more than a small multiple of the object: a
// record takes two bytes at least, a sequence number one.
func TestDecodeAllocationBoundedByInput(t *testing.T) {
	const size = 1 << 20
	// A log whose trailer claims as many records as it has bytes.
	hostileCount := append([]byte(logMagic), make([]byte, size)...)
	hostileCount = binary.BigEndian.AppendUint32(hostileCount, uint32(size))
	hostileCount = reseal(append(hostileCount, 0, 0, 0, 0))
	// A delete record whose sequence count is as large as the object.
	p := binary.AppendUvarint(nil, size)
	p = append(p, make([]byte, size)...)
	w := newLogWriter()
	w.record(recDelete, p[:len(p)-1]) // one short: decoding fails at the end
	hostileSeqs := w.finish()
	// A snapshot that claims as many claims and clients as it has bytes.
	s := append([]byte(snapMagic), 1, 1)
	s = binary.AppendUvarint(s, 0)
	s = binary.AppendUvarint(s, size/4)
	s = append(s, make([]byte, size)...)
	hostileSnap := reseal(append(s, 0, 0, 0, 0))

	for name, c := range map[string]struct {
		data   []byte
		decode func([]byte) error
	}{
		"log record count":   {hostileCount, func(b []byte) error { _, err := decodeLog(b); return err }},
		"log sequence count": {hostileSeqs, func(b []byte) error { _, err := decodeLog(b); return err }},
		"snapshot claims":    {hostileSnap, func(b []byte) error { _, _, err := decodeSnapshot(b); return err }},
	} {
		var err error
		n := allocated(func() { err = c.decode(c.data) })
		if err == nil {
			t.Errorf("%s: hostile object decoded", name)
		}
		if limit := uint64(48*len(c.data) + 1<<20); n > limit {
			t.Errorf("%s: decoding %d bytes allocated %d (limit %d)", name, len(c.data), n, limit)
		}
	}
}

// stateWith returns a state holding messages 1..n, posted by replay.
func stateWith(n int) *state {
	w := newLogWriter()
	for i := 1; i <= n; i++ {
		w.post(&postRec{Seq: uint64(i), Created: 1, TTL: 3600, Body: []byte("{}")})
	}
	recs, err := decodeLog(w.finish())
	if err != nil {
		panic(err)
	}
	s := newState()
	for i := range recs {
		s.apply(&recs[i], 1)
	}
	return s
}

// Two claims under one id in a snapshot are refused: the id would find only
// one of them, and dropping the other forgot the id of the first.
func TestSnapshotDuplicateClaimIDRefused(t *testing.T) {
	s := stateWith(2)
	for q := uint64(1); q <= 2; q++ {
		i := s.newClaimSlot(claim{id: "same", created: 1, expires: 1 << 62, ttl: 60, grace: 60, seqs: []uint64{q}})
		s.msgs.find(q).claim = i
	}
	if _, _, err := decodeSnapshot(encodeSnapshot(s, 1, 0)); !errors.Is(err, errCorrupt) {
		t.Fatalf("snapshot with a claim id twice: %v, want errCorrupt", err)
	}
}

// A snapshot whose next sequence is not past its messages would give a new
// message the id of a live one: decoding moves it past them.
func TestSnapshotNextSeqPastMessages(t *testing.T) {
	s := stateWith(3)
	s.nextSeq = 2
	got, _, err := decodeSnapshot(encodeSnapshot(s, 1, 0))
	if err != nil {
		t.Fatal(err)
	}
	if got.nextSeq != 4 {
		t.Fatalf("nextSeq %d after messages 1..3, want 4", got.nextSeq)
	}
}

// Replay ignores a post that does not come after every message so far
// (found by FuzzDecodeLog: testdata/fuzz/FuzzDecodeLog/79e432fbf289ad14).
func TestReplaySkipsPostOutOfOrder(t *testing.T) {
	s := stateWith(3)
	w := newLogWriter()
	w.post(&postRec{Seq: 2, Created: 1, TTL: 3600, Body: []byte("{}")})
	recs, err := decodeLog(w.finish())
	if err != nil {
		t.Fatal(err)
	}
	s.apply(&recs[0], 2)
	if s.msgs.live != 3 || s.nextSeq != 4 {
		t.Fatalf("after a repeated post: %d live, nextSeq %d; want 3 and 4", s.msgs.live, s.nextSeq)
	}
}
