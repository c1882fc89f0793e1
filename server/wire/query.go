package wire

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Query reads a query string as Zaqar's Falcon app does: comma-separated
// values become lists (auto_parse_qs_csv) and blank values are dropped
// (keep_blank_qs_values=False).
type Query struct{ v url.Values }

// ParseQuery parses a raw query string. Malformed escapes are skipped, not
// fatal, as Falcon does.
func ParseQuery(raw string) Query {
	v := url.Values{}
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		if kv == "" {
			continue
		}
		k, val, _ := strings.Cut(kv, "=")
		k, err1 := url.QueryUnescape(k)
		val, err2 := url.QueryUnescape(val)
		if err1 != nil || err2 != nil || k == "" {
			continue
		}
		for _, item := range strings.Split(val, ",") {
			if item != "" {
				v[k] = append(v[k], item)
			}
		}
	}
	return Query{v}
}

// Has reports whether name has a (non-blank) value.
func (q Query) Has(name string) bool { return len(q.v[name]) > 0 }

// Names returns the parameter names present, sorted.
func (q Query) Names() []string { return slices.Sorted(maps.Keys(q.v)) }

// Get returns the last value of name, as Falcon's get_param does for a list.
func (q Query) Get(name string) (string, bool) {
	vs := q.v[name]
	if len(vs) == 0 {
		return "", false
	}
	return vs[len(vs)-1], true
}

// List returns every value of name, split on commas; nil when absent.
func (q Query) List(name string) []string { return q.v[name] }

func invalidParam(name, msg string) error {
	return &ValidationError{TitleInvalidParam, fmt.Sprintf("The %q parameter is invalid. %s", name, msg)}
}

// Int reads an integer parameter the way Python's int() reads a string:
// surrounding blanks, a sign and digit-separating underscores are allowed.
func (q Query) Int(name string) (v int, present bool, err error) {
	s, ok := q.Get(name)
	if !ok {
		return 0, false, nil
	}
	n, ok := ParsePyInt(s)
	if !ok {
		return 0, true, invalidParam(name, "The value must be an integer.")
	}
	return n, true, nil
}

// ParsePyInt parses a decimal integer as Python's int(str) does, clamping
// values beyond int's range (callers range-check them anyway).
func ParsePyInt(s string) (int, bool) {
	s = strings.TrimSpace(s)
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "" || s[0] == '_' || s[len(s)-1] == '_' || strings.Contains(s, "__") {
		return 0, false
	}
	s = strings.ReplaceAll(s, "_", "")
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		n = 1<<62 - 1 // saturate: only digits remain, so it overflowed
	}
	if neg {
		n = -n
	}
	return int(n), true
}

var (
	trueStrings  = map[string]bool{"true": true, "True": true, "t": true, "yes": true, "y": true, "1": true, "on": true}
	falseStrings = map[string]bool{"false": true, "False": true, "f": true, "no": true, "n": true, "0": true, "off": true}
)

// Bool reads a boolean parameter with Falcon's accepted spellings.
func (q Query) Bool(name string) (v bool, present bool, err error) {
	s, ok := q.Get(name)
	if !ok {
		return false, false, nil
	}
	switch {
	case trueStrings[s]:
		return true, true, nil
	case falseStrings[s]:
		return false, true, nil
	}
	return false, true, invalidParam(name, `The value of the parameter must be "true" or "false".`)
}
