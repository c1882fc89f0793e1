package index

import (
	"encoding/binary"
	"hash/crc32"
	"testing"
)

// Snapshots of the first format (no body checksums) still load, and the
// bodies of their messages are read unchecked; the current format keeps
// each body's checksum.
func TestSnapshotFormatsRead(t *testing.T) {
	s := newState()
	s.applyPost(&postRec{Seq: 1, Created: 1e9, TTL: 60, Client: "c", Body: []byte(`"one"`)}, 1, 8)
	cur, _, err := decodeSnapshot(encodeSnapshot(s, 1, 0))
	if err != nil {
		t.Fatal(err)
	}
	if m := cur.msgs.find(1); m == nil || m.flags&flagBodyCRC == 0 || m.bodyCRC != crc32.Checksum([]byte(`"one"`), castagnoli) {
		t.Fatalf("current format lost the body checksum: %+v", m)
	}

	// The same state as the first format wrote it: flags without the
	// checksum bit, no checksum bytes, the old magic.
	s.msgs.find(1).flags &^= flagBodyCRC
	v1 := encodeSnapshot(s, 1, 0)
	copy(v1, snapMagicV1)
	end := len(v1) - 4
	binary.BigEndian.PutUint32(v1[end:], crc32.Checksum(v1[:end], castagnoli))
	old, seq, err := decodeSnapshot(v1)
	if err != nil || seq != 1 {
		t.Fatalf("first-format snapshot: %v, %v", seq, err)
	}
	m := old.msgs.find(1)
	if m == nil || m.flags&flagBodyCRC != 0 || m.bodyLen != 5 || m.bodyOff != 8 {
		t.Fatalf("first-format message = %+v", m)
	}
}
