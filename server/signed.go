package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cistern-mq/cistern/server/wire"
)

// Pre-signed URLs, as zaqar.common.urls makes and checks them: an
// HMAC-SHA256 over "<paths>\n<methods>\n<project>\n<expires>", where each
// "\n" is a literal backslash and n (Zaqar's template is a raw string),
// paths and methods are sorted and comma-joined, and expires is UTC
// "YYYY-MM-DDTHH:MM:SS".

const signedTimeFormat = "2006-01-02T15:04:05"

// signURL signs paths and methods for project until expires.
func signURL(key []byte, paths, methods []string, project string, expires time.Time) wire.ShareResult {
	paths = slices.Sorted(slices.Values(paths))
	methods = slices.Sorted(slices.Values(methods))
	exp := expires.UTC().Format(signedTimeFormat)
	body := strings.Join(paths, ",") + `\n` + strings.Join(methods, ",") + `\n` + project + `\n` + exp
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(body))
	return wire.ShareResult{Paths: paths, Methods: methods, Project: project, Expires: exp,
		Signature: hex.EncodeToString(mac.Sum(nil))}
}

// isoRE is the subset of ISO 8601 that oslo's parse_isotime reads.
var isoRE = regexp.MustCompile(`^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$`)

// Bounds on a signed URL's expiry. Python reads any UTC offset up to a
// day and any year up to 9999; Cistern takes real offsets only (UTC-12 to
// UTC+14 exist, so at most 14 hours, minutes 0-59), and an expiry at most
// Limits.MaxSignedURLTTL ahead, so that a leaked grant does not live for
// centuries.
const maxUTCOffset = 14 * time.Hour

// parseExpires reads an expiry as Zaqar does: an integer is refused, the
// rest must be ISO 8601 (UTC unless it says otherwise) and in the future;
// Cistern also wants it at most maxTTL ahead.
func parseExpires(s string, now time.Time, maxTTL time.Duration) (time.Time, error) {
	if n, ok := wire.ParsePyInt(s); ok && n != 0 {
		return time.Time{}, fmt.Errorf("`expires` should be date format, for example 2016-01-01T00:00:00, not integer value: %d", n)
	}
	unparsable := fmt.Errorf("Unable to parse date string %s", wire.PyRepr(s))
	m := isoRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return time.Time{}, unparsable
	}
	atoi := func(x string) int { n, _ := strconv.Atoi(x); return n }
	nsec := 0
	if m[7] != "" {
		frac := (m[7] + "000000000")[:9]
		nsec = atoi(frac)
	}
	loc := time.UTC
	if z := m[8]; z != "" && z != "Z" && z != "z" {
		digits := strings.ReplaceAll(z[1:], ":", "")
		off := time.Duration(atoi(digits[:2])) * time.Hour
		if len(digits) == 4 {
			if atoi(digits[2:]) > 59 {
				return time.Time{}, unparsable
			}
			off += time.Duration(atoi(digits[2:])) * time.Minute
		}
		if off > maxUTCOffset {
			return time.Time{}, unparsable
		}
		if z[0] == '-' {
			off = -off
		}
		loc = time.FixedZone(z, int(off/time.Second))
	}
	t := time.Date(atoi(m[1]), time.Month(atoi(m[2])), atoi(m[3]), atoi(m[4]), atoi(m[5]), atoi(m[6]), nsec, loc)
	if t.Month() != time.Month(atoi(m[2])) || t.Day() != atoi(m[3]) || atoi(m[4]) > 23 || atoi(m[5]) > 59 || atoi(m[6]) > 59 {
		return time.Time{}, unparsable
	}
	if !t.After(now) {
		return time.Time{}, errors.New("`expires` is lower than the current time")
	}
	if t.Sub(now) > maxTTL {
		return time.Time{}, fmt.Errorf("`expires` may be at most %d seconds from now", int64(maxTTL/time.Second))
	}
	return t, nil
}

// Bounds on a grant, the same for /share (a 400) and for the URL-*
// headers (a 404), checked before the HMAC or anything else is computed.
// A grant names at most the three resources /share offers, of one queue,
// and a few methods; the headers of a real grant are far shorter.
const (
	maxSignedMethods      = 8
	maxSignedMethodsBytes = 64
	maxSignedExpiresBytes = 64
	signatureHexLen       = 2 * sha256.Size
)

// errGrantTooLarge is why a grant is refused before any work.
var errGrantTooLarge = errors.New("signed URL grant exceeds its bounds")

// maxSignedPathLen is the longest path a grant names: the confirmation
// URL of a subscription, /v2/queues/{longest name}/subscriptions/{id}/confirm
// (confirm.go); /share grants shorter ones.
func (s *Server) maxSignedPathLen() int {
	return len("/v2/queues/") + s.lim.MaxQueueNameLength + len("/subscriptions/") + 36 + len("/confirm")
}

// checkGrantBounds bounds a grant's paths and methods.
func (s *Server) checkGrantBounds(paths, methods []string) error {
	if len(paths) > len(wire.SharePaths) || len(methods) > maxSignedMethods ||
		len(strings.Join(methods, ",")) > maxSignedMethodsBytes {
		return errGrantTooLarge
	}
	for _, p := range paths {
		if len(p) > s.maxSignedPathLen() {
			return errGrantTooLarge
		}
	}
	return nil
}

// signedTTL is the longest life a signed URL may have.
func (s *Server) signedTTL() time.Duration {
	return time.Duration(s.lim.MaxSignedURLTTL) * time.Second
}

// shareQueue answers POST /v2/queues/{q}/share with a signed URL. Repeated
// paths and methods are signed once (Zaqar signs them as given), so every
// grant it makes passes checkGrantBounds.
func (s *Server) shareQueue(rq *request) (reply, error) {
	data, err := s.readSmallBody(rq)
	if err != nil {
		return reply{}, err
	}
	req, err := wire.DecodeShare(data)
	if err != nil {
		return reply{}, err
	}
	if s.secret == nil {
		return reply{}, badAPI("The `key` can't be None")
	}
	base := rq.queuePath() + "/"
	paths := []string{base + "messages"}
	if len(req.Paths) > 0 {
		paths = paths[:0]
		for _, p := range req.Paths {
			paths = append(paths, base+p)
		}
	}
	methods := req.Methods
	if len(methods) == 0 {
		methods = []string{"GET"}
	}
	paths, methods = slices.Compact(slices.Sorted(slices.Values(paths))), slices.Compact(slices.Sorted(slices.Values(methods)))
	if s.checkGrantBounds(paths, methods) != nil {
		return reply{}, badAPI(fmt.Sprintf("`methods` may name at most %d methods of at most %d bytes in all", maxSignedMethods, maxSignedMethodsBytes))
	}
	now := s.now()
	expires := now.Add(24 * time.Hour)
	if req.Expires != nil {
		var text string
		switch wire.Kind(req.Expires) {
		case '"':
			text, _ = wire.String(req.Expires)
		case '0':
			n, isInt := wire.Int(req.Expires)
			if !isInt || n != 0 {
				return reply{}, badAPI(fmt.Sprintf("`expires` should be date format, for example 2016-01-01T00:00:00, not integer value: %s",
					strings.TrimSpace(string(req.Expires))))
			}
			text = "0"
		default:
			return reply{}, badAPI("`expires` should be date format, for example 2016-01-01T00:00:00")
		}
		if expires, err = parseExpires(text, now, s.signedTTL()); err != nil {
			return reply{}, badAPI(err.Error())
		}
	}
	return reply{body: signURL(s.secret, paths, methods, rq.project, expires)}, nil
}

// verifySignedURL checks a request's URL-Signature, URL-Expires,
// URL-Methods and URL-Paths headers; any failure is a 404, as in Zaqar's
// verify_pre_signed_url. Unlike Zaqar it bounds the headers first, checks
// the HMAC (in constant time) before it looks at what the grant says, and
// takes the signed paths as literal paths, never as patterns: a path
// grants itself and what lies under it (".../messages" grants
// ".../messages/{id}", which Zaqar's unanchored search allows too), so a
// grant for queue "a.b" cannot open "a-b" and no client text is ever
// compiled.
func (s *Server) verifySignedURL(rq *request) bool {
	r := rq.r
	if s.secret == nil {
		return false
	}
	sig := r.Header.Get("URL-Signature")
	rawMethods, rawPaths, rawExpires := r.Header.Get("URL-Methods"), r.Header.Get("URL-Paths"), r.Header.Get("URL-Expires")
	project, ok := headerValue(r, "X-Project-Id")
	if !ok {
		project = "None" // Python renders a missing project so
	}
	// Bounds first, on the raw headers, so that nothing below ever sees
	// more than a few hundred bytes.
	if len(sig) != signatureHexLen || len(rawExpires) > maxSignedExpiresBytes || len(project) > s.lim.MaxProjectIDLength ||
		len(rawMethods) > maxSignedMethodsBytes || len(rawPaths) > len(wire.SharePaths)*(s.maxSignedPathLen()+1) {
		return false
	}
	methods, paths := strings.Split(rawMethods, ","), strings.Split(rawPaths, ",")
	if s.checkGrantBounds(paths, methods) != nil {
		return false
	}
	now := s.now()
	expires, err := parseExpires(rawExpires, now, s.signedTTL())
	if err != nil {
		return false
	}
	want := signURL(s.secret, paths, methods, project, expires)
	if !hmac.Equal([]byte(sig), []byte(want.Signature)) {
		return false
	}
	return slices.Contains(methods, r.Method) && grantsPath(paths, r.URL.Path)
}

// grantsPath reports whether one of the signed paths is path or a parent
// of it.
func grantsPath(paths []string, path string) bool {
	for _, p := range paths {
		if p != "" && (path == p || strings.HasPrefix(path, p+"/")) {
			return true
		}
	}
	return false
}
