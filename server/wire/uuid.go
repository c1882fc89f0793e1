package wire

import (
	"errors"
	"math/big"
	"strings"
)

// ErrBadUUID: a Client-ID that Python's uuid.UUID() would refuse.
var ErrBadUUID = errors.New("malformed hexadecimal UUID")

var uuidLimit = new(big.Int).Lsh(big.NewInt(1), 128)

// ParseClientID accepts what Zaqar's strict Client-ID check (Python's
// uuid.UUID(value)) accepts and returns the canonical lower-case 8-4-4-4-12
// form, so that one client spelled two ways is one client for echo.
//
// Python first removes every "urn:" and "uuid:", strips braces from both
// ends and removes every hyphen; 32 characters must remain, and int(s, 16)
// must read them as a value below 2^128. int() allows surrounding blanks, a
// sign, a 0x prefix and single underscores between digits. Only ASCII is
// accepted here (Python would also take non-ASCII digits and blanks).
func ParseClientID(s string) (string, error) {
	s = strings.ReplaceAll(s, "urn:", "")
	s = strings.ReplaceAll(s, "uuid:", "")
	s = strings.Trim(s, "{}")
	s = strings.ReplaceAll(s, "-", "")
	if len(s) != 32 {
		return "", ErrBadUUID
	}
	n, ok := pyHexInt(s)
	if !ok || n.Sign() < 0 || n.Cmp(uuidLimit) >= 0 {
		return "", ErrBadUUID
	}
	var b [16]byte
	n.FillBytes(b[:])
	const hexd = "0123456789abcdef"
	out := make([]byte, 0, 36)
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, hexd[c>>4], hexd[c&15])
	}
	return string(out), nil
}

// pyHexInt is Python's int(s, 16) over ASCII.
func pyHexInt(s string) (*big.Int, bool) {
	for _, c := range []byte(s) {
		if c >= 0x80 {
			return nil, false
		}
	}
	s = strings.Trim(s, " \t\n\r\f\v")
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if len(s) >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		s = s[2:]
		// After a prefix one underscore may come before the first digit.
		if strings.HasPrefix(s, "_") {
			s = s[1:]
		}
	}
	if s == "" || s[0] == '_' || s[len(s)-1] == '_' || strings.Contains(s, "__") {
		return nil, false
	}
	s = strings.ReplaceAll(s, "_", "")
	for _, c := range []byte(s) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return nil, false
		}
	}
	n, ok := new(big.Int).SetString(s, 16)
	if !ok {
		return nil, false
	}
	if neg {
		n.Neg(n)
	}
	return n, true
}
