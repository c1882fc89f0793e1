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

// parseExpires reads an expiry as Zaqar does: an integer is refused, the
// rest must be ISO 8601 (UTC unless it says otherwise) and in the future.
func parseExpires(s string, now time.Time) (time.Time, error) {
	if n, ok := wire.ParsePyInt(s); ok && n != 0 {
		return time.Time{}, fmt.Errorf("`expires` should be date format, for example 2016-01-01T00:00:00, not integer value: %d", n)
	}
	m := isoRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return time.Time{}, fmt.Errorf("Unable to parse date string %s", wire.PyRepr(s))
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
		off := atoi(digits[:2]) * 3600
		if len(digits) == 4 {
			off += atoi(digits[2:]) * 60
		}
		if z[0] == '-' {
			off = -off
		}
		loc = time.FixedZone(z, off)
	}
	t := time.Date(atoi(m[1]), time.Month(atoi(m[2])), atoi(m[3]), atoi(m[4]), atoi(m[5]), atoi(m[6]), nsec, loc)
	if t.Month() != time.Month(atoi(m[2])) || t.Day() != atoi(m[3]) || atoi(m[4]) > 23 || atoi(m[5]) > 59 || atoi(m[6]) > 59 {
		return time.Time{}, fmt.Errorf("Unable to parse date string %s", wire.PyRepr(s))
	}
	if !t.After(now) {
		return time.Time{}, errors.New("`expires` is lower than the current time")
	}
	return t, nil
}

// shareQueue answers POST /v2/queues/{q}/share with a signed URL.
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
		if expires, err = parseExpires(text, now); err != nil {
			return reply{}, badAPI(err.Error())
		}
	}
	return reply{body: signURL(s.secret, paths, methods, rq.project, expires)}, nil
}

// verifySignedURL checks a request's URL-Signature, URL-Expires,
// URL-Methods and URL-Paths headers as Zaqar's verify_pre_signed_url does:
// the method must be listed, some non-empty path pattern must match the
// request path (patterns are regular expressions, searched), the expiry
// must lie ahead and the signature must match. Any failure is a 404.
func (s *Server) verifySignedURL(rq *request) bool {
	r := rq.r
	if s.secret == nil {
		return false
	}
	methods := strings.Split(r.Header.Get("URL-Methods"), ",")
	paths := strings.Split(r.Header.Get("URL-Paths"), ",")
	if !slices.Contains(methods, r.Method) {
		return false
	}
	matched := false
	for _, p := range paths {
		if p == "" {
			continue
		}
		if re, err := regexp.Compile(p); err == nil && re.MatchString(r.URL.Path) {
			matched = true
			break
		}
	}
	if !matched {
		return false
	}
	expires, err := parseExpires(r.Header.Get("URL-Expires"), s.now())
	if err != nil {
		return false
	}
	project, ok := headerValue(r, "X-Project-Id")
	if !ok {
		project = "None" // Python renders a missing project so
	}
	want := signURL(s.secret, paths, methods, project, expires)
	return hmac.Equal([]byte(r.Header.Get("URL-Signature")), []byte(want.Signature))
}
