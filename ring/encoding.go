package ring

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
)

// The encoding of a Set, format 1. Integers are big-endian; "uvarint" is
// encoding/binary's; a string is a uvarint length and its bytes.
//
//	"CRNG"              magic
//	1                   format, 1 byte
//	P                   part power, 1 byte
//	version             uvarint
//	G                   uvarint, number of rings, then G times, by increasing group:
//	  group             string
//	  K                 uvarint, number of pools (1..MaxPools), then K times, by increasing ID:
//	    id              string
//	    weight          8 bytes, IEEE 754 bits (finite, > 0)
//	  2^P pool indexes  1 byte each if K <= 256, else 2 bytes
//	crc                 4 bytes, CRC-32C of everything before it
//
// The encoding is canonical: a Set has exactly one, so equal sets give equal
// bytes. A Set's whole state is encoded; there is nothing to rebuild on load.
const (
	magic  = "CRNG"
	format = 1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt is wrapped by every error UnmarshalBinary returns.
var ErrCorrupt = errors.New("ring: corrupt encoding")

// MarshalBinary encodes s (format above). It never fails.
func (s *Set) MarshalBinary() ([]byte, error) {
	b := append([]byte(magic), format, s.partPower)
	b = binary.AppendUvarint(b, s.version)
	b = binary.AppendUvarint(b, uint64(len(s.rings)))
	for _, r := range s.rings {
		b = appendString(b, r.group)
		b = binary.AppendUvarint(b, uint64(len(r.pools)))
		for _, p := range r.pools {
			b = appendString(b, string(p.ID))
			b = binary.BigEndian.AppendUint64(b, math.Float64bits(p.Weight))
		}
		wide := len(r.pools) > 256
		for _, i := range r.parts {
			if wide {
				b = binary.BigEndian.AppendUint16(b, i)
			} else {
				b = append(b, byte(i))
			}
		}
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli)), nil
}

// UnmarshalBinary decodes data into s, which should be a zero Set. It rejects,
// with an error wrapping ErrCorrupt, anything MarshalBinary would not produce:
// a bad magic, format, part power or checksum, truncated or trailing bytes,
// groups or pool IDs out of order or repeated (a pool is in one group only), a
// weight that is not finite and positive, or a pool index out of range. It
// never panics, and allocates no more than a small multiple of len(data).
func (s *Set) UnmarshalBinary(data []byte) error {
	d := decoder{data: data}
	if string(d.bytes(len(magic))) != magic {
		return d.fail("bad magic")
	}
	if f := d.byte(); f != format {
		return d.fail(fmt.Sprintf("unknown format %d", f))
	}
	pp := d.byte()
	if d.err == nil && (pp < 1 || pp > MaxPartPower) {
		return d.fail(fmt.Sprintf("part power %d out of range", pp))
	}
	n := 1 << pp
	version := d.uvarint()
	var rings []*Ring
	seen := map[PoolID]bool{}
	for g := d.uvarint(); g > 0 && d.err == nil; g-- {
		r := &Ring{group: d.string(), partPower: pp}
		if len(rings) > 0 && rings[len(rings)-1].group >= r.group {
			return d.fail(fmt.Sprintf("group %q out of order", r.group))
		}
		k := d.uvarint()
		if d.err == nil && (k < 1 || k > MaxPools) {
			return d.fail(fmt.Sprintf("group %q: %d pools", r.group, k))
		}
		for ; k > 0 && d.err == nil; k-- {
			p := Pool{ID: PoolID(d.string()), Group: r.group}
			p.Weight = math.Float64frombits(d.uint64())
			switch {
			case d.err != nil:
			case p.ID == "" || seen[p.ID]:
				return d.fail(fmt.Sprintf("pool %q empty or repeated", p.ID))
			case len(r.pools) > 0 && r.pools[len(r.pools)-1].ID >= p.ID:
				return d.fail(fmt.Sprintf("pool %q out of order", p.ID))
			case !(p.Weight > 0) || math.IsInf(p.Weight, 1):
				return d.fail(fmt.Sprintf("pool %q: weight %v", p.ID, p.Weight))
			}
			seen[p.ID] = true
			r.pools = append(r.pools, p)
		}
		width := 1
		if len(r.pools) > 256 {
			width = 2
		}
		raw := d.bytes(n * width)
		if d.err != nil {
			break
		}
		r.parts = make([]uint16, n)
		for p := range r.parts {
			i := uint16(raw[p*width])
			if width == 2 {
				i = binary.BigEndian.Uint16(raw[2*p:])
			}
			if int(i) >= len(r.pools) {
				return d.fail(fmt.Sprintf("group %q: partition %d: pool index %d out of range", r.group, p, i))
			}
			r.parts[p] = i
		}
		rings = append(rings, r)
	}
	body := len(data) - len(d.data)
	sum := d.uint32()
	switch {
	case d.err != nil:
		return d.err
	case len(d.data) > 0:
		return d.fail(fmt.Sprintf("%d trailing bytes", len(d.data)))
	case sum != crc32.Checksum(data[:body], castagnoli):
		return d.fail("checksum mismatch")
	}
	*s = Set{version: version, partPower: pp, rings: rings}
	return nil
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// decoder reads from data; after the first error every read returns zero
// values and err keeps that first error.
type decoder struct {
	data []byte
	err  error
}

func (d *decoder) fail(why string) error {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrCorrupt, why)
	}
	return d.err
}

func (d *decoder) bytes(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.data) {
		d.fail("truncated")
		return nil
	}
	b := d.data[:n]
	d.data = d.data[n:]
	return b
}

func (d *decoder) byte() byte {
	if b := d.bytes(1); b != nil {
		return b[0]
	}
	return 0
}

func (d *decoder) uint64() uint64 {
	if b := d.bytes(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

func (d *decoder) uint32() uint32 {
	if b := d.bytes(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.data)
	if n <= 0 {
		d.fail("bad uvarint")
		return 0
	}
	d.data = d.data[n:]
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if n > uint64(len(d.data)) {
		d.fail("truncated")
		return ""
	}
	return string(d.bytes(int(n)))
}
