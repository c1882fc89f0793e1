package placement

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

// Fuzz targets for the records placement reads back from the control
// container: a decoder never panics, fails only with errCorrupt, and what
// it accepts survives a round trip through json.Marshal. Run one at a
// time, e.g. go test ./placement -run '^$' -fuzz FuzzPlacementEntry.

// seedJSON adds v's encoding and damaged variants of it.
func seedJSON(f *testing.F, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:len(b)/2])
	f.Add(b[:len(b)-1])
	for _, at := range []int{1, len(b) / 3, len(b) / 2} {
		c := append([]byte(nil), b...)
		c[at] ^= 0x20
		f.Add(c)
	}
}

// fuzzRecord checks decode on data and, for what decodes, that encoding
// and decoding again gives the same record.
func fuzzRecord[T any](t *testing.T, data []byte, decode func([]byte) (T, error)) {
	v, err := decode(data)
	if err != nil {
		if !errors.Is(err, errCorrupt) {
			t.Fatalf("decode error %v is not errCorrupt", err)
		}
		return
	}
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("decoded record does not encode: %v", err)
	}
	again, err := decode(out)
	if err != nil {
		t.Fatalf("re-encoded record %s does not decode: %v", out, err)
	}
	if !reflect.DeepEqual(normalize(v), normalize(again)) {
		t.Fatalf("round trip: %+v, then %+v", v, again)
	}
}

// normalize compacts raw JSON fields, which json.Marshal compacts too.
func normalize(v any) any {
	switch x := v.(type) {
	case PoolSpec:
		x.Options = compact(x.Options)
		return x
	case FlavorSpec:
		x.Capabilities = compact(x.Capabilities)
		if len(x.Pools) == 0 {
			x.Pools = nil
		}
		return x
	}
	return v
}

func compact(m json.RawMessage) json.RawMessage {
	if len(m) == 0 || string(m) == "null" {
		return nil
	}
	out, err := json.Marshal(m)
	if err != nil {
		return m
	}
	return out
}

func FuzzPlacementEntry(f *testing.F) {
	seedJSON(f, placementEntry{Pool: "fast"})
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"pool":"a/b"}`))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzRecord(t, data, decodePlacement) })
}

func FuzzMigratingEntry(f *testing.F) {
	seedJSON(f, migratingEntry{From: "a", To: "b"})
	f.Add([]byte(`{"from":"a","to":"a"}`))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzRecord(t, data, decodeMigrating) })
}

func FuzzPoolSpec(f *testing.F) {
	seedJSON(f, PoolSpec{Name: "fast", URI: "swift://x", Weight: 100, Flavor: "gold", Options: json.RawMessage(`{"k": [1, 2]}`)})
	seedJSON(f, PoolSpec{Name: "p", URI: "file:///tmp/x"})
	f.Fuzz(func(t *testing.T, data []byte) { fuzzRecord(t, data, decodePoolSpec) })
}

func FuzzFlavorSpec(f *testing.F) {
	seedJSON(f, FlavorSpec{Name: "gold", Pools: []string{"a", "b"}, Capabilities: json.RawMessage(`{"x":1}`)})
	seedJSON(f, FlavorSpec{Name: "empty"})
	f.Fuzz(func(t *testing.T, data []byte) { fuzzRecord(t, data, decodeFlavorSpec) })
}

func FuzzSpreadMarker(f *testing.F) {
	seedJSON(f, spreadMarker{Elsewhere: new(true)})
	seedJSON(f, spreadMarker{Elsewhere: new(false)})
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzRecord(t, data, decodeSpread) })
}
