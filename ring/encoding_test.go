package ring_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"slices"
	"testing"

	"github.com/cistern-mq/cistern/ring"
)

func marshal(t tb, s *ring.Set) []byte {
	t.Helper()
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// assertSameSet checks that b answers exactly as a does.
func assertSameSet(t tb, a, b *ring.Set) {
	t.Helper()
	if a.Version() != b.Version() || a.PartPower() != b.PartPower() || !slices.Equal(a.Groups(), b.Groups()) ||
		!slices.Equal(a.Pools(), b.Pools()) {
		t.Fatalf("sets differ: version %d/%d, part power %d/%d, groups %q/%q, pools %v/%v",
			a.Version(), b.Version(), a.PartPower(), b.PartPower(), a.Groups(), b.Groups(), a.Pools(), b.Pools())
	}
	for _, g := range a.Groups() {
		if !slices.Equal(a.Ring(g).Assignment(), b.Ring(g).Assignment()) {
			t.Fatalf("group %q: assignments differ", g)
		}
	}
}

func manyPools(k int) []ring.Pool {
	out := make([]ring.Pool, k)
	for i := range out {
		out[i] = ring.Pool{ID: ring.PoolID(fmt.Sprintf("pool-%03d", i)), Weight: float64(1 + i%3)}
	}
	return out
}

func sampleSets(t tb) map[string]*ring.Set {
	grouped := build(t, nil, &ring.Options{PartPower: 12, Seed: 7},
		ring.Pool{ID: "a", Weight: 1},
		ring.Pool{ID: "b", Weight: 2.5},
		ring.Pool{ID: "gold-1", Weight: 1e12, Group: "gold"},
		ring.Pool{ID: "silver-1", Weight: 3, Group: "silver"},
	)
	return map[string]*ring.Set{
		"empty":           build(t, nil, nil),
		"one partition":   build(t, nil, &ring.Options{PartPower: 1}, weighted(1)...),
		"default":         build(t, nil, nil, weighted(1, 2, 3)...),
		"groups":          grouped,
		"second version":  build(t, grouped, nil, ring.Pool{ID: "a", Weight: 1}, ring.Pool{ID: "c", Weight: 1}),
		"300 pools, wide": build(t, nil, &ring.Options{PartPower: 10}, manyPools(300)...),
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	for name, s := range sampleSets(t) {
		t.Run(name, func(t *testing.T) {
			data := marshal(t, s)
			var got ring.Set
			if err := got.UnmarshalBinary(data); err != nil {
				t.Fatal(err)
			}
			assertSameSet(t, s, &got)
			if again := marshal(t, &got); !bytes.Equal(again, data) {
				t.Fatal("re-encoding a decoded set gave other bytes")
			}
			for _, g := range s.Groups() {
				for i := range 100 {
					q := fmt.Sprint("q", i)
					want, _ := s.LookupIn(g, "p", q)
					if id, err := got.LookupIn(g, "p", q); err != nil || id != want {
						t.Fatalf("LookupIn(%q, p, %q) = %q, %v after load; %q before", g, q, id, err, want)
					}
				}
			}
			t.Logf("%d bytes", len(data))
		})
	}
}

// raw builds an encoding by hand, for the cases MarshalBinary never writes.
type raw []byte

func (r raw) u8(v byte) raw       { return append(r, v) }
func (r raw) uv(v uint64) raw     { return binary.AppendUvarint(r, v) }
func (r raw) str(s string) raw    { return append(r.uv(uint64(len(s))), s...) }
func (r raw) f64(w float64) raw   { return binary.BigEndian.AppendUint64(r, math.Float64bits(w)) }
func (r raw) parts(p ...byte) raw { return append(r, p...) }
func (r raw) sealed() []byte {
	return binary.BigEndian.AppendUint32(r, crc32.Checksum(r, crc32.MakeTable(crc32.Castagnoli)))
}

// head starts a format-1 encoding of part power 1 (two partitions).
func head() raw { return raw("CRNG").u8(1).u8(1).uv(1) }

func TestUnmarshalRejects(t *testing.T) {
	valid := marshal(t, build(t, nil, &ring.Options{PartPower: 4}, weighted(1, 2)...))
	flipped := slices.Clone(valid)
	flipped[len(flipped)/2] ^= 0x40

	tests := []struct {
		name string
		data []byte
	}{
		{"nil", nil},
		{"magic only", []byte("CRNG")},
		{"bad magic", append([]byte("XRNG"), valid[4:]...)},
		{"unknown format", raw("CRNG").u8(2).u8(1).uv(1).uv(0).sealed()},
		{"part power 0", raw("CRNG").u8(1).u8(0).uv(1).uv(0).sealed()},
		{"part power 25", raw("CRNG").u8(1).u8(25).uv(1).uv(0).sealed()},
		{"truncated", valid[:len(valid)-5]},
		{"no checksum", valid[:len(valid)-4]},
		{"flipped bit", flipped},
		{"trailing byte", append(slices.Clone(valid), 0)},
		{"huge group count", head().uv(1 << 62).sealed()},
		{"huge string", head().uv(1).uv(1 << 40).sealed()},
		{"no pools", head().uv(1).str("").uv(0).sealed()},
		{"too many pools", head().uv(1).str("").uv(ring.MaxPools + 1).sealed()},
		{"empty pool ID", head().uv(1).str("").uv(1).str("").f64(1).parts(0, 0).sealed()},
		{"zero weight", head().uv(1).str("").uv(1).str("a").f64(0).parts(0, 0).sealed()},
		{"negative weight", head().uv(1).str("").uv(1).str("a").f64(-1).parts(0, 0).sealed()},
		{"NaN weight", head().uv(1).str("").uv(1).str("a").f64(math.NaN()).parts(0, 0).sealed()},
		{"infinite weight", head().uv(1).str("").uv(1).str("a").f64(math.Inf(1)).parts(0, 0).sealed()},
		{"pools out of order", head().uv(1).str("").uv(2).str("b").f64(1).str("a").f64(1).parts(0, 1).sealed()},
		{"repeated pool", head().uv(1).str("").uv(2).str("a").f64(1).str("a").f64(1).parts(0, 1).sealed()},
		{"pool index out of range", head().uv(1).str("").uv(1).str("a").f64(1).parts(0, 1).sealed()},
		{"short assignment", head().uv(1).str("").uv(1).str("a").f64(1).parts(0).sealed()},
		{"groups out of order", head().uv(2).
			str("b").uv(1).str("x").f64(1).parts(0, 0).
			str("a").uv(1).str("y").f64(1).parts(0, 0).sealed()},
		{"pool in two groups", head().uv(2).
			str("a").uv(1).str("x").f64(1).parts(0, 0).
			str("b").uv(1).str("x").f64(1).parts(0, 0).sealed()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s ring.Set
			if err := s.UnmarshalBinary(tt.data); !errors.Is(err, ring.ErrCorrupt) {
				t.Fatalf("UnmarshalBinary = %v, want ErrCorrupt", err)
			}
		})
	}
	// The hand encoder agrees with MarshalBinary where both can write.
	ok := head().uv(1).str("").uv(2).str("a").f64(1).str("b").f64(1).parts(1, 0).sealed()
	var s ring.Set
	if err := s.UnmarshalBinary(ok); err != nil {
		t.Fatalf("hand-made valid encoding: %v", err)
	}
	if got := s.Ring("").Assignment(); !slices.Equal(got, []ring.PoolID{"b", "a"}) {
		t.Fatalf("assignment %q", got)
	}
}

// FuzzUnmarshalBinary: garbage never panics, and whatever decodes is
// canonical (encodes back to the same bytes) and answers lookups.
func FuzzUnmarshalBinary(f *testing.F) {
	for _, s := range sampleSets(f) {
		// Large inputs slow the fuzzer to a crawl; the small ones cover
		// the same paths.
		if data := marshal(f, s); len(data) <= 2048 {
			f.Add(data)
		}
	}
	f.Add(marshal(f, build(f, nil, &ring.Options{PartPower: 3},
		ring.Pool{ID: "a", Weight: 1}, ring.Pool{ID: "b", Weight: 1, Group: "gold"}, ring.Pool{ID: "c", Weight: 2, Group: "gold"})))
	f.Add(head().uv(1).str("").uv(1).str("a").f64(1).parts(0, 0).sealed())
	f.Add([]byte("CRNG\x01\x10"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var s ring.Set
		if err := s.UnmarshalBinary(data); err != nil {
			if !errors.Is(err, ring.ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if again := marshal(t, &s); !bytes.Equal(again, data) {
			t.Fatal("decoded set encodes to other bytes")
		}
		for _, g := range s.Groups() {
			if _, err := s.LookupIn(g, "project", "queue"); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// FuzzRoundTrip: any ring the builder makes loads back with the same answers.
func FuzzRoundTrip(f *testing.F) {
	f.Add(uint64(0), uint8(8), 1.0, 1.0, 0.0, "gold", "project", "queue")
	f.Add(uint64(42), uint8(1), 1e12, 3.5, 2.0, "", "", "")
	f.Add(uint64(7), uint8(16), 0.001, 0.0, 5.0, "x", "p", "q\x00")
	f.Fuzz(func(t *testing.T, seed uint64, pp uint8, w1, w2, w3 float64, group, project, queue string) {
		b, err := ring.NewBuilder(nil, &ring.Options{PartPower: 1 + pp%12, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		for i, w := range []float64{w1, w2, w3} {
			g := ""
			if i == 2 {
				g = group
			}
			if b.SetPool(ring.Pool{ID: ring.PoolID(fmt.Sprint("pool", i)), Weight: w, Group: g}) != nil {
				return // an invalid weight, rejected as documented
			}
		}
		s, err := b.Rebalance()
		if err != nil {
			t.Fatal(err)
		}
		var got ring.Set
		if err := got.UnmarshalBinary(marshal(t, s)); err != nil {
			t.Fatal(err)
		}
		assertSameSet(t, s, &got)
		for _, g := range s.Groups() {
			want, _ := s.LookupIn(g, project, queue)
			if id, err := got.LookupIn(g, project, queue); err != nil || id != want {
				t.Fatalf("LookupIn(%q) = %q, %v after load; %q before", g, id, err, want)
			}
		}
	})
}
