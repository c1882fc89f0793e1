package wire

import (
	"encoding/json"
	"errors"
	"testing"
)

func wantErr(t *testing.T, err error, title, desc string) {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("got %v, want %q / %q", err, title, desc)
	}
	if ve.Title != title || ve.Description != desc {
		t.Fatalf("got %q / %q, want %q / %q", ve.Title, ve.Description, title, desc)
	}
}

func TestDecodePostMessages(t *testing.T) {
	msgs, err := DecodePostMessages([]byte(`{"messages": [{"ttl": 300, "body": {"a": 1}, "x": 1}, {"body": null, "delay": 30}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || *msgs[0].TTL != 300 || string(msgs[0].Body) != `{"a": 1}` || msgs[0].Delay != nil ||
		msgs[1].TTL != nil || string(msgs[1].Body) != "null" || *msgs[1].Delay != 30 {
		t.Fatalf("got %+v", msgs)
	}
	for _, c := range []struct{ name, in, title, desc string }{
		{"bare array", `[{"ttl": 300, "body": "v1 style list"}]`, TitleInvalidAPI, DescNoMessages},
		{"empty list", `{"messages": []}`, TitleInvalidAPI, DescNoMessagesSent},
		{"no body", `{"messages": [{"ttl": 300}]}`, TitleInvalidBody, `Missing "body" field.`},
		{"malformed", `{"messages": [`, TitleInvalidBody, DescMalformed},
		{"empty", ``, TitleInvalidBody, DescEmptyBody},
		{"not a list", `{"messages": {"body": 1}}`, TitleInvalidBody, DescDocType},
		{"float ttl", `{"messages": [{"ttl": 1.5, "body": 1}]}`, TitleInvalidBody, `The value of the "ttl" field must be a int.`},
		{"ttl before body", `{"messages": [{"ttl": "x"}]}`, TitleInvalidBody, `The value of the "ttl" field must be a int.`},
		{"string delay", `{"messages": [{"delay": "1", "body": 1}]}`, TitleInvalidBody, `The value of the "delay" field must be a int.`},
		{"bad utf-8", "{\"messages\": [{\"body\": \"\xff\"}]}", TitleInvalidBody, DescMalformed},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := DecodePostMessages([]byte(c.in))
			wantErr(t, err, c.title, c.desc)
		})
	}
}

func TestDecodePatch(t *testing.T) {
	ops, err := DecodePatch([]byte(`[{"op": "replace", "path": "/metadata/description", "value": "updated"}, {"op": "remove", "path": "/other/a~1b"}]`))
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) != 2 || ops[0].Key != "description" || ops[1].Key != "a/b" || ops[1].Value != nil {
		t.Fatalf("got %+v", ops)
	}
	for _, c := range []struct{ name, in, desc string }{
		{"short path", `[{"op": "add", "path": "/color", "value": "red"}]`, "Invalid JSON pointer for this resource: '/color, e.g /metadata/key'"},
		{"bad root", `[{"op": "add", "path": "/meta/color", "value": "red"}]`, "The root of path must be metadata, e.g /metadata/key."},
		{"no value", `[{"op": "add", "path": "/metadata/color"}]`, `Operation "add" requires a member named "value".`},
		{"bad op", `[{"op": "move", "path": "/metadata/color"}]`, "Invalid operation: `move`. It must be one of the following: add, remove, replace."},
		{"no op", `[{"path": "/metadata/color"}]`, "Unable to find `op` in JSON Schema change. It must be one of the following: add, remove, replace."},
		{"no path", `[{"op": "add"}]`, "Unable to find 'path' in JSON Schema change"},
		{"not list", `{"op": "add"}`, DescDocType},
		{"not objects", `[1]`, "Operations must be JSON objects."},
		{"empty", ``, "PATCH body could not be empty for update."},
		{"adjacent", `[{"op": "add", "path": "/metadata//x", "value": 1}]`, "Pointer `/metadata//x` contains adjacent \"/\"."},
		{"tilde", `[{"op": "add", "path": "/metadata/x~2", "value": 1}]`, "Pointer `/metadata/x~2` contains \"~\" not part of a recognized escape sequence."},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := DecodePatch([]byte(c.in))
			wantErr(t, err, TitleInvalidBody, c.desc)
		})
	}
}

func TestDecodePurgeAndShare(t *testing.T) {
	p, err := DecodePurge(nil)
	if err != nil || len(p.ResourceTypes) != 2 {
		t.Fatalf("empty purge: %+v %v", p, err)
	}
	_, err = DecodePurge([]byte(`{"resource_types": ["bogus"]}`))
	wantErr(t, err, TitleInvalidAPI, "Resource types must be a sub set of {'messages', 'subscriptions'}.")
	_, err = DecodePurge([]byte(`{}`))
	wantErr(t, err, TitleInvalidAPI, `Post body must contain key "resource_types".`)

	s, err := DecodeShare([]byte(`{"methods": ["GET", "POST"], "paths": ["messages"], "expires": "2030-01-01T00:00:00"}`))
	if err != nil || len(s.Methods) != 2 || len(s.Paths) != 1 || string(s.Expires) != `"2030-01-01T00:00:00"` {
		t.Fatalf("share: %+v %v", s, err)
	}
	_, err = DecodeShare([]byte(`{"zz": 1, "aa": 2}`))
	wantErr(t, err, TitleInvalidAPI, "Unknown keys: {'aa', 'zz'}")
	_, err = DecodeShare([]byte(`{"paths": ["nope"]}`))
	wantErr(t, err, TitleInvalidAPI, "Invalid paths: {'nope'}")
}

func TestClaimAndMetadata(t *testing.T) {
	c, err := DecodeClaim(nil, true)
	if err != nil || c.TTL != nil || c.Grace != nil {
		t.Fatalf("empty claim: %+v %v", c, err)
	}
	_, err = DecodeClaim(nil, false)
	wantErr(t, err, TitleInvalidBody, DescEmptyBody)
	_, err = DecodeClaim([]byte(`{"grace": "x"}`), true)
	wantErr(t, err, TitleInvalidBody, `The value of the "grace" field must be a int.`)

	obj, err := DecodeMetadata([]byte(`{"b": 1, "a": {"x": [1]}, "b": 2}`))
	if err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(obj)
	if string(out) != `{"b":2,"a":{"x":[1]}}` {
		t.Fatalf("order or values lost: %s", out)
	}
	_, err = DecodeMetadata([]byte(`this is not json`))
	wantErr(t, err, TitleInvalidBody, DescMalformed)
	_, err = DecodeMetadata([]byte(`[1]`))
	wantErr(t, err, TitleInvalidBody, DescDocType)
}

func TestQuery(t *testing.T) {
	q := ParseQuery("limit=+1_0&ids=a,b,,c&ids=d&echo=yes&blank=&bad=%zz&x=no")
	if v, ok, err := q.Int("limit"); v != 10 || !ok || err != nil {
		t.Fatalf("limit: %d %v %v", v, ok, err)
	}
	if got := q.List("ids"); len(got) != 4 || got[2] != "c" || got[3] != "d" {
		t.Fatalf("ids: %q", got)
	}
	if q.Has("blank") || q.Has("bad") {
		t.Fatal("blank or malformed values kept")
	}
	if v, _, err := q.Bool("echo"); !v || err != nil {
		t.Fatal("echo=yes")
	}
	_, _, err := q.Int("x")
	wantErr(t, err, TitleInvalidParam, `The "x" parameter is invalid. The value must be an integer.`)
	_, _, err = q.Bool("limit")
	wantErr(t, err, TitleInvalidParam, `The "limit" parameter is invalid. The value of the parameter must be "true" or "false".`)
}

func TestParseClientID(t *testing.T) {
	const want = "3381af92-2b9e-11e3-b191-71861300734c"
	for _, ok := range []string{
		want, "3381AF922B9E11E3B19171861300734C", "{3381af92-2b9e-11e3-b191-71861300734c}",
		"urn:uuid:3381af92-2b9e-11e3-b191-71861300734c", "uuid:3381af92-2b9e-11e3-b191-71861300734c",
		"3381-af92-2b9e-11e3-b191-7186-1300-734c", "{{3381af922b9e11e3b19171861300734c}}",
	} {
		if got, err := ParseClientID(ok); err != nil || got != want {
			t.Errorf("%q: %q %v", ok, got, err)
		}
	}
	if got, err := ParseClientID("0x000000000000000000000000000000"); err != nil || got != "00000000-0000-0000-0000-000000000000" {
		t.Errorf("0x prefix: %q %v", got, err)
	}
	for _, bad := range []string{"not-a-uuid-at-all", "", "3381af92-2b9e-11e3-b191-71861300734", "3381af922b9e11e3b19171861300734g", "++381af922b9e11e3b19171861300734c", "-381af922b9e11e3b19171861300734c", "é381af922b9e11e3b19171861300734"} {
		if got, err := ParseClientID(bad); err == nil {
			t.Errorf("%q accepted as %q", bad, got)
		}
	}
}
