package index

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/crc32"
	"maps"
	"math"
	"reflect"
	"slices"
	"testing"
)

// Fuzz targets for every object the engine reads back from the store: log
// objects, snapshots and catalog entries. Each checks that a decoder never
// panics, fails only with errCorrupt, and that what decodes survives a
// round trip through its encoder. Run one at a time, e.g.
//
//	go test ./index -run '^$' -fuzz FuzzDecodeLog -fuzztime 60s
//
// Cases the fuzzer found are kept under testdata/fuzz and run with every
// go test.

// sampleLogs are real log objects: every record kind, an empty log, and
// bodies of a few sizes.
func sampleLogs() [][]byte {
	w := newLogWriter()
	w.post(&postRec{Seq: 1, Created: 1_800_000_000e9, TTL: 3600, Client: "c1", Body: []byte(`{"n":1}`)})
	w.post(&postRec{Seq: 2, Created: 1_800_000_001e9, TTL: 60, Delay: 5, Client: "c2", Origin: "0123abcd/7", Body: []byte(`"x"`)})
	w.claim(&claimRec{ID: "cl1", Created: 1_800_000_002e9, TTL: 30, Grace: 10, Seqs: []uint64{1, 2}})
	w.renew(&renewRec{ID: "cl1", Updated: 1_800_000_003e9, TTL: 40, Grace: 5})
	w.release("cl1")
	w.moving(&movingRec{DLQ: "dead", TTL: 100, Seqs: []uint64{2}})
	w.delete([]uint64{1, 2, 1 << 40})
	w.purge()
	all := w.finish()

	empty := newLogWriter().finish()

	w = newLogWriter()
	for i := range 50 {
		w.post(&postRec{Seq: uint64(i + 10), Created: int64(i), TTL: 1, Body: bytes.Repeat([]byte{'a'}, i*7)})
	}
	many := w.finish()
	return [][]byte{all, empty, many}
}

// sampleState is a queue index with claims, clients, an origin and a
// message on its way to a dead-letter queue, built by replaying a log.
func sampleState() *state {
	recs, err := decodeLog(sampleLogs()[2])
	if err != nil {
		panic(err)
	}
	s := newState()
	for i := range recs {
		s.apply(&recs[i], 3)
	}
	w := newLogWriter()
	w.post(&postRec{Seq: 100, Created: 5, TTL: 3600, Client: "other", Origin: "feedbeef/9", Body: []byte(`1`)})
	w.claim(&claimRec{ID: "a", Created: 10, TTL: 30, Grace: 10, Seqs: []uint64{10, 11, 12}})
	w.claim(&claimRec{ID: "b", Created: 10, TTL: 300, Grace: 10, Seqs: []uint64{20, 21}})
	w.moving(&movingRec{DLQ: "dead", TTL: 60, Seqs: []uint64{30}})
	w.delete([]uint64{15})
	recs, err = decodeLog(w.finish())
	if err != nil {
		panic(err)
	}
	for i := range recs {
		s.apply(&recs[i], 4)
	}
	return s
}

// damaged adds f.Add seeds for obj and its truncated and bit-flipped
// variants (resealed, so that they reach the decoder past the checksum).
func damaged(f *testing.F, obj []byte) {
	f.Add(obj)
	for _, n := range []int{0, 1, 8, len(obj) / 2, len(obj) - 5, len(obj) - 1} {
		if n >= 0 && n < len(obj) {
			f.Add(obj[:n])
			f.Add(reseal(obj[:n]))
		}
	}
	for _, at := range []int{8, 9, 10, 12, len(obj) / 3, len(obj) / 2, len(obj) - 9} {
		if at >= 0 && at < len(obj)-4 {
			b := slices.Clone(obj)
			b[at] ^= 0x80
			f.Add(b)
			f.Add(reseal(b))
		}
	}
}

// reseal writes a correct checksum over b's last 4 bytes, so that fuzzed
// bytes get past the checksum and into the decoder.
func reseal(b []byte) []byte {
	if len(b) < 4 {
		return b
	}
	b = slices.Clone(b)
	binary.BigEndian.PutUint32(b[len(b)-4:], crc32.Checksum(b[:len(b)-4], castagnoli))
	return b
}

func FuzzDecodeLog(f *testing.F) {
	for _, l := range sampleLogs() {
		damaged(f, l)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkLog(t, data)
		checkLog(t, reseal(data))
	})
}

func checkLog(t *testing.T, data []byte) {
	recs, err := decodeLog(data)
	if err != nil {
		if !errors.Is(err, errCorrupt) {
			t.Fatalf("decode error %v is not errCorrupt", err)
		}
		return
	}
	// Round trip: what decodes encodes to an object that decodes the same.
	w := newLogWriter()
	offs := map[int]uint32{}
	for i, r := range recs {
		switch r.Kind {
		case recPost:
			offs[i] = w.post(r.Post)
		case recDelete:
			w.delete(r.Seqs)
		case recClaim:
			w.claim(r.Claim)
		case recRenew:
			w.renew(r.Renew)
		case recRelease:
			w.release(r.Release)
		case recPurge:
			w.purge()
		case recMoving:
			w.moving(r.Moving)
		default:
			t.Fatalf("decoded unknown kind %d", r.Kind)
		}
	}
	out := w.finish()
	again, err := decodeLog(out)
	if err != nil {
		t.Fatalf("re-encoded log does not decode: %v", err)
	}
	if len(again) != len(recs) {
		t.Fatalf("%d records, re-encoded %d", len(recs), len(again))
	}
	for i := range recs {
		a, b := recs[i], again[i]
		if a.Kind == recPost {
			if b.BodyOff != offs[i] || !bytes.Equal(out[b.BodyOff:int(b.BodyOff)+len(b.Post.Body)], a.Post.Body) {
				t.Fatalf("record %d: body at %d, writer said %d", i, b.BodyOff, offs[i])
			}
			a.BodyOff, b.BodyOff = 0, 0
		}
		if !equalRecords(a, b) {
			t.Fatalf("record %d: %+v, re-encoded %+v", i, a, b)
		}
	}
	// Replaying what decodes never panics and leaves a consistent index
	// that a snapshot carries over.
	s := newState()
	for i := range recs {
		s.apply(&recs[i], 7)
	}
	checkState(t, s)
	s.sweep(0)
	checkState(t, s)
	roundTripSnapshot(t, s, 7)
}

// equalRecords compares records, nil and empty slices alike.
func equalRecords(a, b logRecord) bool {
	norm := func(r *logRecord) {
		if len(r.Seqs) == 0 {
			r.Seqs = nil
		}
		if r.Claim != nil && len(r.Claim.Seqs) == 0 {
			c := *r.Claim
			c.Seqs = nil
			r.Claim = &c
		}
		if r.Moving != nil && len(r.Moving.Seqs) == 0 {
			m := *r.Moving
			m.Seqs = nil
			r.Moving = &m
		}
		if r.Post != nil && len(r.Post.Body) == 0 {
			p := *r.Post
			p.Body = nil
			r.Post = &p
		}
	}
	norm(&a)
	norm(&b)
	return reflect.DeepEqual(a, b)
}

func FuzzDecodeSnapshot(f *testing.F) {
	s := sampleState()
	damaged(f, encodeSnapshot(s, 4, 0))
	damaged(f, encodeSnapshot(s, 4, math.MaxInt64)) // every claim expired
	damaged(f, encodeSnapshot(newState(), 0, 0))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkSnapshot(t, data)
		checkSnapshot(t, reseal(data))
	})
}

func checkSnapshot(t *testing.T, data []byte) {
	s, logSeq, err := decodeSnapshot(data)
	if err != nil {
		if !errors.Is(err, errCorrupt) {
			t.Fatalf("decode error %v is not errCorrupt", err)
		}
		return
	}
	checkState(t, s)
	roundTripSnapshot(t, s, logSeq)
	// A decoded index takes more records without breaking.
	w := newLogWriter()
	w.post(&postRec{Seq: s.nextSeq, Created: 1, TTL: 10, Body: []byte("{}")})
	w.claim(&claimRec{ID: "z", Created: 1, TTL: 10, Grace: 1, Seqs: []uint64{1, 2, 3, s.nextSeq}})
	w.delete([]uint64{2})
	recs, err := decodeLog(w.finish())
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		s.apply(&recs[i], logSeq+1)
	}
	checkState(t, s)
}

// roundTripSnapshot checks that a snapshot of s decodes to the same index.
func roundTripSnapshot(t *testing.T, s *state, logSeq uint64) {
	t.Helper()
	const now = math.MinInt64 // keep every claim that can be kept
	s2, seq2, err := decodeSnapshot(encodeSnapshot(s, logSeq, now))
	if err != nil {
		t.Fatalf("snapshot of a decoded index does not decode: %v", err)
	}
	checkState(t, s2)
	if seq2 != logSeq {
		t.Fatalf("log seq %d, round trip %d", logSeq, seq2)
	}
	if a, b := viewOf(s, now), viewOf(s2, now); !reflect.DeepEqual(a, b) {
		t.Fatalf("snapshot round trip changed the index:\n%+v\n%+v", a, b)
	}
}

// stateView is what a queue's index says, without slot numbers.
type stateView struct {
	NextSeq uint64
	Msgs    []msgView
	Origins map[string]uint64
	Moving  map[uint64]movingTarget
}

type msgView struct {
	Seq, BodyLog                           uint64
	Created, Expires, VisibleAt            int64
	BodyOff, BodyLen                       uint32
	Client                                 string
	ClaimCount                             uint16
	Flags                                  uint8
	Claim                                  string
	ClaimCreated, ClaimExpires, TTL, Grace int64
}

func viewOf(s *state, now int64) stateView {
	v := stateView{NextSeq: s.nextSeq, Origins: map[string]uint64{}, Moving: maps.Clone(s.moving)}
	s.msgs.each(0, func(m *msg) bool {
		mv := msgView{Seq: m.seq, BodyLog: m.bodyLog, Created: m.created, Expires: m.expires, VisibleAt: m.visibleAt,
			BodyOff: m.bodyOff, BodyLen: m.bodyLen, Client: s.clients[m.client], ClaimCount: m.claimCount, Flags: m.flags}
		if c := s.liveClaim(m, now); c != nil {
			mv.Claim, mv.ClaimCreated, mv.ClaimExpires, mv.TTL, mv.Grace = c.id, c.created, c.expires, c.ttl, c.grace
		}
		v.Msgs = append(v.Msgs, mv)
		return true
	})
	for o, q := range s.origins {
		if s.msgs.find(q) != nil {
			v.Origins[o] = q
		}
	}
	return v
}

// checkState fails t if s breaks an invariant the engine relies on:
// messages in strictly increasing order below nextSeq, claims reachable by
// id and naming their messages, clients and log counts in step.
func checkState(t *testing.T, s *state) {
	t.Helper()
	var prev uint64
	started := false
	live := 0
	logLive := map[uint64]int{}
	for _, c := range s.msgs.chunks {
		if len(c.msgs) == 0 {
			t.Fatal("empty chunk")
		}
		n := 0
		for i := range c.msgs {
			m := &c.msgs[i]
			if started && m.seq <= prev {
				t.Fatalf("seq %d after %d", m.seq, prev)
			}
			prev, started = m.seq, true
			if m.flags&flagDeleted != 0 {
				continue
			}
			n++
			if m.seq >= s.nextSeq {
				t.Fatalf("message %d at or past nextSeq %d", m.seq, s.nextSeq)
			}
			if int(m.client) >= len(s.clients) {
				t.Fatalf("message %d: client %d of %d", m.seq, m.client, len(s.clients))
			}
			logLive[m.bodyLog]++
			if m.claim != 0 {
				if int(m.claim) >= len(s.claims) {
					t.Fatalf("message %d: claim slot %d of %d", m.seq, m.claim, len(s.claims))
				}
				c := &s.claims[m.claim]
				if s.claimIDs[c.id] != m.claim {
					t.Fatalf("message %d: claim %q in slot %d, its id names slot %d", m.seq, c.id, m.claim, s.claimIDs[c.id])
				}
				if !slices.Contains(c.seqs, m.seq) {
					t.Fatalf("message %d: claim %q does not list it", m.seq, c.id)
				}
			}
		}
		if n != c.live {
			t.Fatalf("chunk counts %d live, holds %d", c.live, n)
		}
		live += n
	}
	if live != s.msgs.live {
		t.Fatalf("list counts %d live, holds %d", s.msgs.live, live)
	}
	if !maps.Equal(logLive, s.logLive) {
		t.Fatalf("logLive %v, messages say %v", s.logLive, logLive)
	}
	for id, i := range s.claimIDs {
		if s.claims[i].id != id {
			t.Fatalf("claim id %q names slot %d holding %q", id, i, s.claims[i].id)
		}
	}
}

func FuzzCatalogEntry(f *testing.F) {
	good, _ := json.Marshal(catalogEntry{Gen: "0123456789abcdef0123456789abcdef", Created: 1_800_000_000e9, Metadata: json.RawMessage(`{"_ttl":60,"k":[1,2]}`)})
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte(`{"gen":"0123456789abcdef0123456789abcdef","created":1}`))
	f.Add([]byte(`{"gen":"abc","created":1,"metadata":null}`))
	f.Add([]byte(`{"gen":"0123456789abcdef","metadata":"x"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ent, err := decodeCatalogEntry(data)
		if err != nil {
			if !errors.Is(err, errCorrupt) {
				t.Fatalf("decode error %v is not errCorrupt", err)
			}
			return
		}
		if !validGen(ent.Gen) {
			t.Fatalf("decoded generation %q", ent.Gen)
		}
		// What the engine derives from an entry must not panic.
		_ = queueContainer(ent.Gen)
		q := &queue{exists: true, entry: ent}
		if seq, ok := q.parseMessageID(q.messageID(42)); !ok || seq != 42 {
			t.Fatalf("message id round trip: %d, %v", seq, ok)
		}
		_ = parseSettings(ent.Metadata)
		out, err := json.Marshal(ent)
		if err != nil {
			t.Fatalf("decoded entry does not encode: %v", err)
		}
		again, err := decodeCatalogEntry(out)
		if err != nil {
			t.Fatalf("re-encoded entry %s does not decode: %v", out, err)
		}
		if again.Gen != ent.Gen || again.Created != ent.Created || !jsonEqual(emptyObject(again.Metadata), emptyObject(ent.Metadata)) {
			t.Fatalf("round trip: %+v, then %+v", ent, again)
		}
	})
}

func jsonEqual(a, b json.RawMessage) bool {
	var x, y bytes.Buffer
	if json.Compact(&x, a) != nil || json.Compact(&y, b) != nil {
		return bytes.Equal(a, b)
	}
	return bytes.Equal(x.Bytes(), y.Bytes())
}

func FuzzRefKey(f *testing.F) {
	for _, r := range []QueueRef{{"p", "q"}, {"", "q"}, {"a/b%c", "x"}, {"%2F", "q/r"}, {"%", ""}} {
		f.Add(r.Project, r.Name)
	}
	f.Fuzz(func(t *testing.T, project, name string) {
		ref := QueueRef{project, name}
		if got, ok := ParseRefKey(RefKey(ref)); !ok || got != ref {
			t.Fatalf("ParseRefKey(RefKey(%+v)) = %+v, %v", ref, got, ok)
		}
		// Any key parses or is refused without a panic, and what parses
		// is named by that key and no other.
		for _, k := range []string{project + "/" + name, project} {
			if got, ok := ParseRefKey(k); ok && RefKey(got) != k {
				t.Fatalf("ParseRefKey(%q) = %+v, whose key is %q", k, got, RefKey(got))
			}
		}
	})
}

// FuzzDecodeHead: a cluster-mode head comes from the coordinator; whatever
// it holds, decoding refuses it as corrupt or yields one recovery can
// follow (skips ascending inside the snapshot..log range), and what
// decodes encodes back to the same head.
func FuzzDecodeHead(f *testing.F) {
	f.Add(encodeHead(head{Gen: "0123456789abcdef0123456789abcdef", Snap: 4, Log: 9, Skip: []uint64{5, 9}}))
	f.Add([]byte(`{"gen":"0123456789abcdef","log":3,"skip":[4]}`))
	f.Add([]byte(`{"gen":"0123456789abcdef","snap":5,"log":3}`))
	f.Add([]byte(`{"gen":"0123456789abcdef","log":18446744073709551615,"skip":[18446744073709551615]}`))
	f.Add([]byte(`{"gen":"xyz"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := decodeHead(data)
		if err != nil {
			if !errors.Is(err, errCorrupt) {
				t.Fatalf("decode error %v is not errCorrupt", err)
			}
			return
		}
		if !validGen(h.Gen) || h.Snap > h.Log || len(h.Skip) > maxSkip || !slices.IsSorted(h.Skip) {
			t.Fatalf("decoded head breaks its rules: %+v", h)
		}
		again, err := decodeHead(encodeHead(h))
		if err != nil || again.Gen != h.Gen || again.Snap != h.Snap || again.Log != h.Log || !slices.Equal(again.Skip, h.Skip) {
			t.Fatalf("round trip: %+v, then %+v (%v)", h, again, err)
		}
		_ = h.skipped(h.Log)
		_ = h.withSnap(h.Log)
	})
}

// FuzzDecodeJournal: a journal object never panics the decoder, fails
// only as corrupt, names only queues and generations that could be, and
// what decodes encodes back to the same bytes.
func FuzzDecodeJournal(f *testing.F) {
	logs := sampleLogs()
	f.Add(journalBytes("w1", []journalEntry{
		{ref: QueueRef{Project: "p", Name: "a"}, gen: "0123456789abcdef", batch: 1, frame: logs[0]},
		{ref: QueueRef{Project: "", Name: "b"}, gen: "89abcdef", batch: 7, frame: logs[1]},
		{ref: QueueRef{Project: "x/y%", Name: "c"}, gen: "0123456789abcdef", batch: 1 << 40, frame: logs[2]},
	}))
	f.Add(journalBytes("", nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		writer, secs, err := decodeJournal(data)
		if err != nil {
			if !errors.Is(err, errCorrupt) {
				t.Fatalf("error %v is not errCorrupt", err)
			}
			return
		}
		entries := make([]journalEntry, len(secs))
		for i, s := range secs {
			if s.off < 0 || s.size < 0 || s.off+s.size > len(data) || !validGen(s.gen) {
				t.Fatalf("section %+v out of bounds or invalid", s)
			}
			entries[i] = journalEntry{ref: s.ref, gen: s.gen, batch: s.batch, frame: data[s.off : s.off+s.size]}
		}
		again, offs := encodeJournal(writer, entries)
		if !bytes.Equal(again, data) {
			t.Fatalf("round trip changed the object")
		}
		for i, s := range secs {
			if offs[i] != s.off {
				t.Fatalf("section %d at %d, encoder says %d", i, s.off, offs[i])
			}
		}
	})
}

func journalBytes(writer string, entries []journalEntry) []byte {
	b, _ := encodeJournal(writer, entries)
	return b
}
