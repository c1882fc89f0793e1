package fsdriver

import (
	"path/filepath"
	"strings"
)

// Keys become file names by escaping every byte outside [A-Za-z0-9_-] as
// %XX. The dot is escaped too, so no name is ever ".", ".." or hidden, and
// the driver's own temporary files (which start with '.') can never collide
// with a key. A name longer than segmentLen is cut into directories of at
// most segmentLen bytes, each marked with a trailing '+', which the escaping
// never produces, so any key of up to drivers.MaxKeyLen bytes fits the
// usual 255-byte limit on file names.
const segmentLen = 200

func plain(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

const hexDigits = "0123456789ABCDEF"

// encodeKey returns the path of key relative to its container directory.
func encodeKey(key string) string {
	var b strings.Builder
	b.Grow(len(key) * 2)
	seg := 0 // bytes in the current segment
	for i := 0; i < len(key); i++ {
		c := key[i]
		n := 1
		if !plain(c) {
			n = 3
		}
		if seg+n > segmentLen {
			b.WriteString("+/")
			seg = 0
		}
		if n == 1 {
			b.WriteByte(c)
		} else {
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
		}
		seg += n
	}
	return filepath.FromSlash(b.String())
}

// decodeKey reverses encodeKey; ok is false for a path that encodeKey could
// not have produced (a stray file in a container directory).
func decodeKey(rel string) (key string, ok bool) {
	rel = filepath.ToSlash(rel)
	segs := strings.Split(rel, "/")
	var b strings.Builder
	for i, s := range segs {
		if i < len(segs)-1 {
			if !strings.HasSuffix(s, "+") {
				return "", false
			}
			s = s[:len(s)-1]
		}
		if s == "" {
			return "", false
		}
		for j := 0; j < len(s); j++ {
			c := s[j]
			switch {
			case plain(c):
				b.WriteByte(c)
			case c == '%' && j+2 < len(s):
				hi, lo := unhex(s[j+1]), unhex(s[j+2])
				if hi < 0 || lo < 0 {
					return "", false
				}
				b.WriteByte(byte(hi<<4 | lo))
				j += 2
			default:
				return "", false
			}
		}
	}
	return b.String(), true
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
