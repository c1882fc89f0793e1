package server

import (
	"fmt"
	"unicode/utf8"
)

// Names a client chooses: queue names and project ids. Both become parts
// of object-store keys ("catalog/<project>/<queue>", with '%' and '/' of
// the project escaped as %25 and %2F), so the rules here are what makes
// every accepted name a valid key on every store: 400 up front, never a
// store error later.

// maxStoredProjectLen bounds a project id as it appears in a key, escapes
// counted: one path segment, which a store that keeps keys as file paths
// (drivers.Capabilities.PathKeys) limits to 255 bytes. With the longest
// prefix ("migrating/") and queue name (64) a key then stays far below
// drivers.MaxKeyLen (768).
const maxStoredProjectLen = 255

// validQueueName is Zaqar's queue_identification rule,
// ^[a-zA-Z0-9_.-]+$ of at most max bytes, except that "." and ".." are
// refused: their hrefs (/v2/queues/..) collapse in browsers, curl and
// proxies into other paths.
func validQueueName(name string, max int) bool {
	if name == "" || len(name) > max || name == "." || name == ".." {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// checkProject reports why a (non-empty) project id is refused, or "". The
// rule: at most max bytes (Zaqar's 256 characters, counted in bytes), valid
// UTF-8 without control characters, not "." or "..", and at most
// maxStoredProjectLen bytes once each '%' and '/' counts three.
func checkProject(p string, max int) string {
	if len(p) > max {
		return fmt.Sprintf("the project id is longer than %d bytes", max)
	}
	if !utf8.ValidString(p) {
		return "the project id is not valid UTF-8"
	}
	stored := 0
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c < 0x20 || c == 0x7f:
			return "the project id holds a control character"
		case c == '%' || c == '/':
			stored += 3
		default:
			stored++
		}
	}
	if stored > maxStoredProjectLen {
		return fmt.Sprintf("the project id is longer than %d bytes when each '%%' and '/' counts three", maxStoredProjectLen)
	}
	if p == "." || p == ".." {
		return `the project id cannot be "." or ".."`
	}
	return ""
}
