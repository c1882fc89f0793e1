package fsdriver

import (
	"path/filepath"
	"strings"
)

// Keys become paths (format 2) as follows, so that a prefix listing reads
// only the directories under the prefix and no two keys share a file on a
// case-insensitive file system:
//
//   - A key is cut into pieces at each '/': every piece but the last is a
//     directory named after the piece plus a '~' ("log/7" is "log~/7"), the
//     last is a file. A key and the parent of other keys ("log" next to
//     "log/7") are a file and a directory, side by side.
//   - A piece is written with every byte outside [a-z0-9_-] escaped as %XX
//     (upper-case hex): upper-case letters too, so every name the driver
//     writes is lower-case apart from its hex digits, which makes names
//     that differ only in case impossible. The dot is escaped, so no name
//     is ".", ".." or hidden, and the driver's own files, which start with
//     '.', never collide with a key.
//   - A piece that reaches chunkLen encoded bytes while more of the key
//     follows becomes a directory marked with a trailing '+' holding the
//     rest ("/" included), so every name fits the usual 255-byte limit. The
//     cut depends only on the bytes before it, so a piece that ends a key
//     at chunkLen bytes or more is a file next to its chunk directory, and a
//     chunk directory never shares a name prefix with a '~' directory.
//   - An empty last piece ("a/") is the file "=".
const chunkLen = 192

const (
	slashMark = '~' // a directory: the piece, then '/', then more
	chunkMark = '+' // a directory: the piece, then at least one more byte
	emptyFile = "=" // a file whose piece is empty
)

func plain(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

const hexDigits = "0123456789ABCDEF"

// keyPath returns the path of key relative to its container directory.
func keyPath(key string) string {
	dirs, file := keyPieces(key)
	return filepath.FromSlash(dirs + file)
}

// keyPieces returns the directories that key's path certainly goes through
// ("" or ending in '/') and what is left (the file name when key is a whole
// key). For a prefix, dirs is where every key under it lives.
func keyPieces(key string) (dirs, rest string) {
	var d, cur strings.Builder
	d.Grow(len(key) * 2)
	for i := 0; i < len(key); i++ {
		c := key[i]
		if cur.Len() >= chunkLen {
			d.WriteString(cur.String())
			d.WriteString(string(chunkMark) + "/")
			cur.Reset()
		}
		if c == '/' {
			d.WriteString(cur.String())
			d.WriteString(string(slashMark) + "/")
			cur.Reset()
			continue
		}
		if plain(c) {
			cur.WriteByte(c)
		} else {
			cur.WriteByte('%')
			cur.WriteByte(hexDigits[c>>4])
			cur.WriteByte(hexDigits[c&15])
		}
	}
	if cur.Len() == 0 {
		return d.String(), emptyFile
	}
	return d.String(), cur.String()
}

// entryKind is what a name in a container's tree stands for.
type entryKind int

const (
	kindFile  entryKind = iota // the key ends here
	kindChunk                  // keys continue the piece with at least one byte
	kindSlash                  // keys continue with '/' and more
)

// decodeName reverses one name of keyPath; ok is false for a name keyPath
// could not have written (a temporary file, a stray file).
func decodeName(name string) (piece string, kind entryKind, ok bool) {
	if name == emptyFile {
		return "", kindFile, true
	}
	if name == "" {
		return "", 0, false
	}
	switch name[len(name)-1] {
	case slashMark:
		kind, name = kindSlash, name[:len(name)-1]
	case chunkMark:
		kind, name = kindChunk, name[:len(name)-1]
		if len(name) < chunkLen {
			return "", 0, false
		}
	}
	if kind == kindFile && name == "" || kind == kindChunk && name == "" {
		return "", 0, false
	}
	p, ok := unescape(name)
	return p, kind, ok
}

// unescape decodes %XX escapes and refuses anything keyPath would not
// have written, so no two names decode to one key.
func unescape(s string) (string, bool) {
	var b strings.Builder
	b.Grow(len(s))
	for j := 0; j < len(s); j++ {
		c := s[j]
		switch {
		case plain(c):
			b.WriteByte(c)
		case c == '%' && j+2 < len(s):
			hi, lo := unhex(s[j+1]), unhex(s[j+2])
			if hi < 0 || lo < 0 || plain(byte(hi<<4|lo)) {
				return "", false
			}
			b.WriteByte(byte(hi<<4 | lo))
			j += 2
		default:
			return "", false
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

// containerName returns the directory name of a container (a valid
// container name: up to 200 bytes of [A-Za-z0-9._-], not starting with
// '.'). A name without upper-case letters is its own directory; otherwise
// the directory is the name in lower case, '@', and a mask of which bytes
// were upper case (one hex digit per four bytes, lower case), so that names
// differing only in case never share a directory and every directory name
// is at most 251 bytes.
func containerName(name string) string {
	mask := make([]byte, (len(name)+3)/4)
	lower := []byte(name)
	upper := false
	for i, c := range lower {
		if c >= 'A' && c <= 'Z' {
			lower[i] = c + 'a' - 'A'
			mask[i/4] |= 1 << (i % 4)
			upper = true
		}
	}
	if !upper {
		return name
	}
	for i, m := range mask {
		mask[i] = "0123456789abcdef"[m]
	}
	return string(lower) + "@" + string(mask)
}

// decodeContainerName reverses containerName; ok is false for names it
// could not have written.
func decodeContainerName(dir string) (string, bool) {
	name, mask, hasMask := strings.Cut(dir, "@")
	if name == "" || name[0] == '.' || len(name) > 200 {
		return "", false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return "", false
		}
	}
	if !hasMask {
		return name, true
	}
	if len(mask) != (len(name)+3)/4 {
		return "", false
	}
	b := []byte(name)
	any := false
	for i := 0; i < len(mask); i++ {
		m := strings.IndexByte("0123456789abcdef", mask[i])
		if m < 0 {
			return "", false
		}
		for bit := 0; bit < 4; bit++ {
			if m&(1<<bit) == 0 {
				continue
			}
			j := i*4 + bit
			if j >= len(b) || b[j] < 'a' || b[j] > 'z' {
				return "", false
			}
			b[j] -= 'a' - 'A'
			any = true
		}
	}
	if !any {
		return "", false
	}
	return string(b), true
}
