package index

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// The journal object format (journal.go says what the journal is for):
//
//	"CSTJRN01" | uvarint len | writer | section* | uint32 count | uint32 crc32c(all before)
//	section = uvarint len | ref key | uvarint len | generation | uvarint batch
//	        | uvarint len | frame
//
// A frame is a whole log object ("CSTLOG01" ... with its own count and
// checksum): the batch the queue would have written alone. The writer is
// the engine instance that wrote the object (random at Open): a journal
// write refused because the number is taken is retried over an object of
// its own writer (a failed write that landed), never over another's. Recovery reads
// one section back with a ranged GET and decodes its frame as a log
// object, so the offsets of bodies inside a frame are those of a log.
const journalMagic = "CSTJRN01"

// journalEntry is one queue's batch on its way into a journal object.
type journalEntry struct {
	ref   QueueRef
	gen   string
	batch uint64
	frame []byte
}

// journalSection is where one queue's batch lies in a journal object.
type journalSection struct {
	ref   QueueRef
	gen   string
	batch uint64
	off   int // of the frame, in the journal object
	size  int
}

// encodeJournal writes entries as one journal object and returns the
// offset of each entry's frame in it.
func encodeJournal(writer string, entries []journalEntry) ([]byte, []int) {
	n := len(journalMagic) + trailer + len(writer) + 1
	for _, en := range entries {
		n += len(en.frame) + len(en.ref.Name) + len(en.ref.Project) + len(en.gen) + 32
	}
	b := append(make([]byte, 0, n), journalMagic...)
	b = appendString(b, writer)
	offs := make([]int, len(entries))
	for i, en := range entries {
		b = appendString(b, RefKey(en.ref))
		b = appendString(b, en.gen)
		b = binary.AppendUvarint(b, en.batch)
		b = binary.AppendUvarint(b, uint64(len(en.frame)))
		offs[i] = len(b)
		b = append(b, en.frame...)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(entries)))
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli)), offs
}

// decodeJournal checks a journal object and says where its sections are.
// Frames are not decoded here (a queue's load does it, section by
// section), but each must name a queue and a generation that could be.
func decodeJournal(data []byte) (writer string, sections []journalSection, err error) {
	if len(data) < len(journalMagic)+trailer || string(data[:len(journalMagic)]) != journalMagic {
		return "", nil, fmt.Errorf("%w: not a journal object", errCorrupt)
	}
	end := len(data) - trailer
	if crc32.Checksum(data[:end+4], castagnoli) != binary.BigEndian.Uint32(data[end+4:]) {
		return "", nil, fmt.Errorf("%w: journal checksum mismatch", errCorrupt)
	}
	count := binary.BigEndian.Uint32(data[end:])
	// A section takes four bytes at least: a count past that is a lie.
	if uint64(count) > uint64(end-len(journalMagic))/4 {
		return "", nil, fmt.Errorf("%w: journal count", errCorrupt)
	}
	d := decoder{b: data[:end], off: len(journalMagic)}
	writer = d.string()
	out := make([]journalSection, 0, count)
	for i := uint32(0); i < count && d.err == nil; i++ {
		refKey := d.string()
		gen := d.string()
		batch := d.uvarint()
		size := d.uvarint()
		if d.err != nil || size > uint64(end-d.off) {
			d.fail()
			break
		}
		ref, ok := ParseRefKey(refKey)
		if !ok || !validGen(gen) {
			d.fail()
			break
		}
		out = append(out, journalSection{ref: ref, gen: gen, batch: batch, off: d.off, size: int(size)})
		d.off += int(size)
	}
	if d.err != nil || d.off != end {
		return "", nil, fmt.Errorf("%w: journal body", errCorrupt)
	}
	return writer, out, nil
}
