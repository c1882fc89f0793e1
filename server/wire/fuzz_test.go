package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"testing"
)

// Every decoder either succeeds with values that hold its contract or fails
// with a *ValidationError; none panics. Run one with, e.g.,
// go test ./server/wire -run '^$' -fuzz FuzzDecodePostMessages.

func mustValidation(t *testing.T, err error) {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Title == "" || ve.Description == "" {
		t.Fatalf("error %v (%T) is not a ValidationError with title and description", err, err)
	}
}

func FuzzDecodePostMessages(f *testing.F) {
	for _, s := range []string{
		`{"messages": [{"ttl": 300, "body": {"event": "x"}}, {"body": "s", "delay": 5}]}`,
		`[{"ttl": 300, "body": "v1 style"}]`,
		`{"messages": []}`,
		`{"messages": [{"ttl": 300}]}`,
		`{"messages": [{"ttl": 10.5, "body": 1}]}`,
		`{"messages": [{"body": null, "ttl": 99999999999999999999999}]}`,
		`{"messages": [`,
		`{"messages": {"body": 1}}`,
		`{"messages": [1, 2]}`,
		`{"messages": [{"body": 1, "delay": true}]}`,
		"", "null", `"messages"`, "{\"messages\": [{\"body\": \"\xff\"}]}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		msgs, err := DecodePostMessages(data)
		if err != nil {
			mustValidation(t, err)
			return
		}
		if len(msgs) == 0 {
			t.Fatal("success with no messages")
		}
		for _, m := range msgs {
			if !json.Valid(m.Body) {
				t.Fatalf("body %q is not JSON", m.Body)
			}
		}
	})
}

func FuzzDecodeClaim(f *testing.F) {
	for _, s := range []string{"", "{}", `{"ttl": 300, "grace": 60}`, `{"ttl": "x"}`, `{"grace": 1.5}`, `[]`, `{`, ` `} {
		f.Add([]byte(s), true)
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, data []byte, allowEmpty bool) {
		c, err := DecodeClaim(data, allowEmpty)
		if err != nil {
			mustValidation(t, err)
			return
		}
		if len(bytes.TrimSpace(data)) == 0 && !allowEmpty {
			t.Fatal("empty PATCH body accepted")
		}
		_ = c
	})
}

func FuzzDecodeMetadata(f *testing.F) {
	for _, s := range []string{
		`{"_max_messages_post_size": 262144, "_default_message_ttl": 3600, "description": "x"}`,
		`{"a": 1, "a": 2, "b": [1, {"c": null}]}`,
		`this is not json`, `[]`, `{}`, ``, `{"\u00e9": "\ud83d\ude00"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		obj, err := DecodeMetadata(data)
		if err != nil {
			mustValidation(t, err)
			return
		}
		out, err := json.Marshal(obj)
		if err != nil || !json.Valid(out) {
			t.Fatalf("re-encoding %q: %v", out, err)
		}
		again, err := DecodeMetadata(out)
		if err != nil || len(again) != len(obj) {
			t.Fatalf("round trip of %q: %v (%d vs %d keys)", out, err, len(again), len(obj))
		}
		for i := range obj {
			if obj[i].Key != again[i].Key {
				t.Fatalf("key %d: %q became %q", i, obj[i].Key, again[i].Key)
			}
		}
	})
}

func FuzzDecodePatch(f *testing.F) {
	for _, s := range []string{
		`[{"op": "replace", "path": "/metadata/description", "value": "updated"}, {"op": "add", "path": "/metadata/color", "value": "blue"}]`,
		`[{"op": "add", "path": "/color", "value": "red"}]`,
		`[{"op": "remove", "path": "/x/y"}]`,
		`[{"op": "move", "path": "/metadata/a"}]`,
		`[{"path": "/metadata/a"}]`,
		`[{"op": "add", "path": "metadata/a", "value": 1}]`,
		`[{"op": "add", "path": "/metadata//a", "value": 1}]`,
		`[{"op": "add", "path": "/metadata/a~2", "value": 1}]`,
		`[{"op": "add", "path": "/metadata/a~1b", "value": 1}]`,
		`[{"op": "add", "path": "/metadata/a"}]`,
		`{"op": "add"}`, `[1]`, ``, `[`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ops, err := DecodePatch(data)
		if err != nil {
			mustValidation(t, err)
			return
		}
		for _, op := range ops {
			if !slices.Contains(patchOps, op.Op) || len(op.Path) != 2 || op.Key != op.Path[1] {
				t.Fatalf("bad op %+v", op)
			}
			if op.Op != "remove" && op.Value == nil {
				t.Fatalf("%s without a value", op.Op)
			}
		}
	})
}

func FuzzDecodePurge(f *testing.F) {
	for _, s := range []string{``, `{"resource_types": ["messages"]}`, `{"resource_types": ["bogus"]}`, `{}`, `{"resource_types": "messages"}`, `[]`, `{`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := DecodePurge(data)
		if err != nil {
			mustValidation(t, err)
			return
		}
		for _, r := range p.ResourceTypes {
			if r != "messages" && r != "subscriptions" {
				t.Fatalf("resource type %q accepted", r)
			}
		}
	})
}

func FuzzDecodeShare(f *testing.F) {
	for _, s := range []string{
		`{"methods": ["GET", "POST"], "paths": ["messages"]}`,
		`{"expires": "2030-01-01T00:00:00"}`, `{"expires": 5}`,
		`{"paths": ["nope"]}`, `{"bogus": 1}`, `{"methods": "GET"}`, ``, `[]`, `{`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := DecodeShare(data)
		if err != nil {
			mustValidation(t, err)
			return
		}
		for _, p := range s.Paths {
			if !slices.Contains(SharePaths, p) {
				t.Fatalf("path %q accepted", p)
			}
		}
		if s.Expires != nil && !json.Valid(s.Expires) {
			t.Fatalf("expires %q is not JSON", s.Expires)
		}
	})
}

func FuzzQuery(f *testing.F) {
	for _, s := range []string{
		"limit=5", "limit=21&echo=true", "ids=a,b,,c&ids=d", "limit= 7 ", "limit=1_000", "limit=%zz",
		"echo=yes&include_claimed=0", "pop=-1", "limit=99999999999999999999999", "=x&&a=",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q := ParseQuery(raw)
		for _, name := range q.Names() {
			for _, v := range q.List(name) {
				if v == "" {
					t.Fatalf("blank value kept for %q", name)
				}
			}
			if _, present, err := q.Int(name); err != nil {
				mustValidation(t, err)
			} else if !present {
				t.Fatalf("%q listed but absent", name)
			}
			if _, _, err := q.Bool(name); err != nil {
				mustValidation(t, err)
			}
		}
	})
}

var canonicalUUID = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func FuzzParseClientID(f *testing.F) {
	for _, s := range []string{
		"3381af92-2b9e-11e3-b191-71861300734c", "3381af922b9e11e3b19171861300734c",
		"{3381af92-2b9e-11e3-b191-71861300734c}", "urn:uuid:3381af92-2b9e-11e3-b191-71861300734c",
		"not-a-uuid-at-all", "", "0x381af922b9e11e3b19171861300734c", "+3381af922b9e11e3b1917186130073_",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseClientID(s)
		if err != nil {
			return
		}
		if !canonicalUUID.MatchString(c) {
			t.Fatalf("%q gave non-canonical %q", s, c)
		}
		if again, err := ParseClientID(c); err != nil || again != c {
			t.Fatalf("canonical %q does not parse to itself: %q %v", c, again, err)
		}
	})
}
