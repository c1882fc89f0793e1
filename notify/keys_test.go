package notify

import (
	"strings"
	"testing"

	"github.com/cistern-mq/cistern/index"
)

// TestKeyForms pins the keys existing stores hold.
func TestKeyForms(t *testing.T) {
	ref := index.QueueRef{Project: "p/1%", Name: "q.a"}
	id := ID("3a6f697f-e886-4c4b-8986-a9f14e0fa01a")
	for _, c := range []struct{ got, want string }{
		{subKey(ref, id), "subs/p%2F1%25/q.a/3a6f697f-e886-4c4b-8986-a9f14e0fa01a"},
		{cursorKey(ref, id), "cursor/p%2F1%25/q.a/3a6f697f-e886-4c4b-8986-a9f14e0fa01a"},
		{subKey(index.QueueRef{Name: "q"}, id), "subs/%/q/3a6f697f-e886-4c4b-8986-a9f14e0fa01a"},
		{subscriberKey(ref, "http://x/"), "subscriber/p%2F1%25/q.a/37844e1d35c3b9ff99fb483814d3f860fe8ae757f236cac8def2502f48f8639d"},
	} {
		if c.got != c.want {
			t.Errorf("key %q, want %q", c.got, c.want)
		}
	}
	if got, gotID, ok := parseSubKey(subKey(ref, id)); !ok || got != ref || gotID != id {
		t.Fatalf("parseSubKey: %v %v %v", got, gotID, ok)
	}
	for _, bad := range []string{"", "subs/", "subs/p/q", "subs/p/q/notanid", "cursor/p/q/" + string(id),
		"subs/%41/q/" + string(id), "subs/p//" + string(id), "subs/p/q/" + string(id) + "x"} {
		if _, _, ok := parseSubKey(bad); ok {
			t.Errorf("parseSubKey(%q) took it", bad)
		}
	}
	for range 100 {
		if id := NewID(); !id.Valid() {
			t.Fatalf("NewID %q not valid", id)
		}
	}
}

// FuzzSubKey: every key parseSubKey takes is the key of what it returns,
// and every (ref, id) round-trips.
func FuzzSubKey(f *testing.F) {
	f.Add("subs/p%2F1%25/q.a/3a6f697f-e886-4c4b-8986-a9f14e0fa01a", "p", "q")
	f.Add("subs/%/q/3a6f697f-e886-4c4b-8986-a9f14e0fa01a", "", "a-b_c")
	f.Fuzz(func(t *testing.T, key, project, name string) {
		if ref, id, ok := parseSubKey(key); ok {
			if subKey(ref, id) != key {
				t.Fatalf("parseSubKey(%q) = %v %v, whose key is %q", key, ref, id, subKey(ref, id))
			}
		}
		if name == "" || strings.Contains(name, "/") {
			return
		}
		ref, id := index.QueueRef{Project: project, Name: name}, NewID()
		got, gotID, ok := parseSubKey(subKey(ref, id))
		if !ok || got != ref || gotID != id {
			t.Fatalf("round trip of %v %v: %v %v %v", ref, id, got, gotID, ok)
		}
	})
}
