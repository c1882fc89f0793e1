package server

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cistern-mq/cistern/drivers"
	"github.com/cistern-mq/cistern/server/wire"
)

// grantHeaders are the URL-* headers of a grant, as a client sends them.
func grantHeaders(g wire.ShareResult) map[string]string {
	return map[string]string{"URL-Signature": g.Signature, "URL-Expires": g.Expires,
		"URL-Methods": strings.Join(g.Methods, ","), "URL-Paths": strings.Join(g.Paths, ","), "Client-ID": clientB}
}

// TestSignedURLLiteralPaths: a signed path is a path, not a pattern. A
// grant for queue "a.b" used to open "a-b" (the dot matched any byte), and
// a path signed as a pattern opened every queue.
func TestSignedURLLiteralPaths(t *testing.T) {
	e := newEnv(t, envOpts{})
	for _, q := range []string{"a.b", "a-b", "x"} {
		e.must(req{method: "POST", path: "/v2/queues/" + q + "/messages", body: `{"messages": [{"body": 1}]}`}, 201)
	}
	var sh wire.ShareResult
	e.must(req{method: "POST", path: "/v2/queues/a.b/share", body: `{"methods": ["GET"]}`}, 200).decode(t, &sh)
	var posted wire.PostResult
	e.must(req{method: "POST", path: "/v2/queues/a.b/messages", body: `{"messages": [{"body": 2}]}`}, 201).decode(t, &posted)

	// A pattern signed with the server's own key: it must grant nothing
	// but the literal path it spells.
	exp := e.clk.Now().Add(time.Hour)
	pattern := signURL([]byte("test-secret"), []string{"/v2/queues/.*/messages"}, []string{"GET"}, project, exp)

	for _, c := range []struct {
		name  string
		grant wire.ShareResult
		path  string
		want  int
	}{
		{"granted queue", sh, "/v2/queues/a.b/messages", 200},
		{"a message under the granted path", sh, posted.Resources[0], 200},
		{"dot is not a wildcard", sh, "/v2/queues/a-b/messages", 404},
		{"no prefix of a longer name", sh, "/v2/queues/a.bc/messages", 404},
		{"pattern opens nothing", pattern, "/v2/queues/x/messages", 404},
		{"pattern opens nothing either", pattern, "/v2/queues/a-b/messages", 404},
	} {
		if got := e.do(req{method: "GET", path: c.path, header: grantHeaders(c.grant)}).status; got != c.want {
			t.Errorf("%s: GET %s: %d, want %d", c.name, c.path, got, c.want)
		}
	}
}

// TestSignedURLBounds: the URL-* headers are bounded before anything is
// computed from them. The 5,000-term pattern that took seconds to compile
// is refused even when it carries a valid signature (signed here with the
// server's key), which shows the bound does not wait for the HMAC; no
// signed path is ever compiled at all.
func TestSignedURLBounds(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.must(req{method: "POST", path: "/v2/queues/s/messages", body: `{"messages": [{"body": 1}]}`}, 201)
	exp := e.clk.Now().Add(time.Hour)
	terms := make([]string, 0, 5000)
	for i := range 4999 {
		terms = append(terms, fmt.Sprintf("(a+%d+)+b", i))
	}
	terms = append(terms, "/v2/queues/s/messages")
	huge := signURL([]byte("test-secret"), terms, []string{"GET"}, project, exp)
	if got := e.do(req{method: "GET", path: "/v2/queues/s/messages", header: grantHeaders(huge)}).status; got != http.StatusNotFound {
		t.Errorf("5,000 signed paths: %d, want 404", got)
	}
	if err := e.srv.checkGrantBounds(terms, []string{"GET"}); err != errGrantTooLarge {
		t.Errorf("checkGrantBounds(5,000 paths) = %v", err)
	}

	ok := signURL([]byte("test-secret"), []string{"/v2/queues/s/messages"}, []string{"GET"}, project, exp)
	manyMethods := signURL([]byte("test-secret"), []string{"/v2/queues/s/messages"},
		strings.Split("GET,A,B,C,D,E,F,G,H", ","), project, exp)
	longPath := signURL([]byte("test-secret"), []string{"/v2/queues/s/messages", "/v2/queues/s/" + strings.Repeat("m", 200)},
		[]string{"GET"}, project, exp)
	farAway := signURL([]byte("test-secret"), []string{"/v2/queues/s/messages"}, []string{"GET"}, project,
		time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC))
	for _, c := range []struct {
		name  string
		grant wire.ShareResult
		want  int
	}{
		{"a grant within bounds", ok, 200},
		{"nine methods", manyMethods, 404},
		{"a path longer than any queue's", longPath, 404},
		{"expiry in year 9999", farAway, 404},
	} {
		if got := e.do(req{method: "GET", path: "/v2/queues/s/messages", header: grantHeaders(c.grant)}).status; got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}

// TestShareExpiresBounds: /share takes real UTC offsets only and an expiry
// at most max_signed_url_ttl ahead; Python's parser took "-99:99" and year
// 9999.
func TestShareExpiresBounds(t *testing.T) {
	e := newEnv(t, envOpts{})
	now := e.clk.Now().UTC()
	at := func(d time.Duration) string { return now.Add(d).Format(signedTimeFormat) }
	for _, c := range []struct {
		expires string
		want    string // "" for 200
	}{
		{at(time.Hour), ""},
		{at(20*time.Hour) + "+14:00", ""},
		{at(time.Hour) + "-14:00", ""},
		{at(364 * 24 * time.Hour), ""},
		{"9999-01-01T00:00:00", "`expires` may be at most 31536000 seconds from now"},
		{at(366 * 24 * time.Hour), "`expires` may be at most 31536000 seconds from now"},
		{at(time.Hour) + "-99:99", "Unable to parse date string '" + at(time.Hour) + "-99:99'"},
		{at(time.Hour) + "+14:01", "Unable to parse date string '" + at(time.Hour) + "+14:01'"},
		{at(time.Hour) + "+02:60", "Unable to parse date string '" + at(time.Hour) + "+02:60'"},
		{at(time.Hour) + "+1500", "Unable to parse date string '" + at(time.Hour) + "+1500'"},
	} {
		body := `{"expires": "` + c.expires + `"}`
		r := e.do(req{method: "POST", path: "/v2/queues/s/share", body: body})
		switch {
		case c.want == "" && r.status != 200:
			t.Errorf("%s: %d %s", c.expires, r.status, r.body)
		case c.want != "":
			want := `{"title": "Invalid API request", "description": ` + fmt.Sprintf("%q", c.want) + `}`
			if r.status != 400 || !jsonEq(r.body, []byte(want)) {
				t.Errorf("%s: %d %s, want 400 %s", c.expires, r.status, r.body, want)
			}
		}
	}

	// Repeated paths and methods are signed once, so a grant /share makes
	// always passes the header bounds.
	var sh wire.ShareResult
	e.must(req{method: "POST", path: "/v2/queues/s/share",
		body: `{"paths": ["messages", "messages", "claims"], "methods": ["GET", "GET", "POST"]}`}, 200).decode(t, &sh)
	if strings.Join(sh.Paths, ",") != "/v2/queues/s/claims,/v2/queues/s/messages" || strings.Join(sh.Methods, ",") != "GET,POST" {
		t.Errorf("deduplicated grant: %+v", sh)
	}
	r := e.must(req{method: "POST", path: "/v2/queues/s/share",
		body: `{"methods": ["A", "B", "C", "D", "E", "F", "G", "H", "I"]}`}, 400)
	if !strings.Contains(string(r.body), "`methods` may name at most 8 methods") {
		t.Errorf("nine methods: %s", r.body)
	}
}

// FuzzParseExpires: any text either fails or gives an expiry strictly
// ahead of now and at most the bound ahead, with a real UTC offset.
func FuzzParseExpires(f *testing.F) {
	for _, s := range []string{"2027-01-01T00:00:00", "2027-01-01T00:00:00-99:99", "9999-12-31T23:59:59Z",
		"2027-01-01 00:00:00.123456+14:00", "0", "12345", "2027-02-30T00:00:00"} {
		f.Add(s)
	}
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	const maxTTL = 365 * 24 * time.Hour
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseExpires(s, now, maxTTL)
		if err != nil {
			return
		}
		if !got.After(now) || got.Sub(now) > maxTTL {
			t.Fatalf("%q: %v is outside (now, now+%v]", s, got, maxTTL)
		}
		if _, off := got.Zone(); off > 14*3600 || off < -14*3600 {
			t.Fatalf("%q: offset %d s", s, off)
		}
	})
}

// FuzzCheckProject: an accepted project id is a key every store takes.
func FuzzCheckProject(f *testing.F) {
	for _, s := range []string{"demo", "caf\xe9", strings.Repeat("/", 253), ".", "a\x00b", strings.Repeat("%", 85)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if p == "" || checkProject(p, 256) != "" {
			return
		}
		escaped := strings.NewReplacer("%", "%25", "/", "%2F").Replace(p)
		key := "migrating/" + escaped + "/" + strings.Repeat("q", 64)
		if err := drivers.ValidKey(key); err != nil || drivers.PathUnsafe(key) {
			t.Fatalf("%q accepted, but key %q: %v (path-unsafe %v)", p, key, err, drivers.PathUnsafe(key))
		}
	})
}
