package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/big"
	"unicode/utf8"
)

// Member is one key of an Object.
type Member struct {
	Key   string
	Value json.RawMessage
}

// Object is a JSON object that keeps its keys in document order, as Python
// dicts do: queue metadata comes back in the order it was written, with the
// reserved defaults after it.
type Object []Member

// Get returns the value under key.
func (o Object) Get(key string) (json.RawMessage, bool) {
	for _, m := range o {
		if m.Key == key {
			return m.Value, true
		}
	}
	return nil, false
}

// Set replaces the value under key in place, or appends it.
func (o *Object) Set(key string, v json.RawMessage) {
	for i := range *o {
		if (*o)[i].Key == key {
			(*o)[i].Value = v
			return
		}
	}
	*o = append(*o, Member{key, v})
}

// Delete removes key and reports whether it was there.
func (o *Object) Delete(key string) bool {
	for i := range *o {
		if (*o)[i].Key == key {
			*o = append((*o)[:i], (*o)[i+1:]...)
			return true
		}
	}
	return false
}

// Clone returns a copy that shares no slice with o.
func (o Object) Clone() Object { return append(Object(nil), o...) }

// MarshalJSON writes the members in order. A nil Object is {}.
func (o Object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(m.Key)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		if len(m.Value) == 0 {
			b.WriteString("null")
		} else {
			b.Write(m.Value)
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// UnmarshalJSON reads an object, keeping key order; a repeated key keeps
// its first position and its last value (Python's json does the same).
func (o *Object) UnmarshalJSON(data []byte) error {
	obj, err := parseObject(data)
	if err != nil {
		return err
	}
	*o = obj
	return nil
}

var errNotObject = errors.New("not a JSON object")

// parseObject decodes a JSON object whose syntax is already known valid;
// errNotObject when it is another kind of value.
func parseObject(data []byte) (Object, error) {
	if Kind(data) != '{' {
		return nil, errNotObject
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if _, err := dec.Token(); err != nil { // {
		return nil, err
	}
	obj := Object{}
	var seen map[string]int // where each key is
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		// A map, not Object.Set, so that an object of many keys costs
		// linear time, not quadratic.
		if seen == nil {
			seen = map[string]int{}
		}
		if i, dup := seen[key]; dup {
			obj[i].Value = v
			continue
		}
		seen[key] = len(obj)
		obj = append(obj, Member{key, v})
	}
	return obj, nil
}

// parseArray splits a JSON array whose syntax is known valid.
func parseArray(data []byte) ([]json.RawMessage, bool) {
	if Kind(data) != '[' {
		return nil, false
	}
	var out []json.RawMessage
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, false
	}
	return out, true
}

// Kind returns the first byte of a JSON value ('{', '[', '"', 't', 'f',
// 'n', or '0' for any number), or 0 for an empty or blank one.
func Kind(raw json.RawMessage) byte {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return 0
	}
	switch c := raw[0]; c {
	case '{', '[', '"', 't', 'f', 'n':
		return c
	default:
		return '0'
	}
}

// Int reads a JSON integer the way Python's isinstance(v, int) sees a
// parsed value: a number literal with no fraction and no exponent. Values
// beyond int64 saturate, so range checks still fail them. Booleans are not
// integers here (Python would take true as 1).
func Int(raw json.RawMessage) (int64, bool) {
	raw = bytes.TrimSpace(raw)
	if Kind(raw) != '0' || bytes.ContainsAny(raw, ".eE") {
		return 0, false
	}
	n, ok := new(big.Int).SetString(string(raw), 10)
	if !ok {
		return 0, false
	}
	switch {
	case n.IsInt64():
		return n.Int64(), true
	case n.Sign() > 0:
		return math.MaxInt64, true
	default:
		return math.MinInt64, true
	}
}

// String reads a JSON string.
func String(raw json.RawMessage) (string, bool) {
	if Kind(raw) != '"' {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// Truthy is Python's truth value of a parsed JSON value: null, false, 0,
// 0.0, "", [] and {} are false.
func Truthy(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	switch Kind(raw) {
	case 0, 'n', 'f':
		return false
	case 't':
		return true
	case '"':
		return len(raw) > 2
	case '[':
		return len(bytes.TrimSpace(raw[1:len(raw)-1])) > 0
	case '{':
		return len(bytes.TrimSpace(raw[1:len(raw)-1])) > 0
	default:
		var f float64
		if json.Unmarshal(raw, &f) != nil {
			return true // out of float range: not zero
		}
		return f != 0
	}
}

// validJSON reports whether data is one well-formed JSON document in valid
// UTF-8 (Zaqar decodes bodies as UTF-8 before parsing them).
func validJSON(data []byte) bool { return utf8.Valid(data) && json.Valid(data) }
