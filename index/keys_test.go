package index

import (
	"context"
	"errors"
	"slices"
	"testing"
)

// The keys are the on-store format: stores written by earlier versions must
// keep loading, so these strings may only change with a conversion.
func TestKeysAreUnchanged(t *testing.T) {
	const gen = "0123456789abcdef0123456789abcdef"
	for _, c := range []struct{ got, want string }{
		{ControlContainer, "cistern-control"},
		{catalogKey(QueueRef{"p1", "orders"}), "catalog/p1/orders"},
		{catalogKey(QueueRef{"", "q"}), "catalog/%/q"},
		{catalogKey(QueueRef{"a/b%c", "x-1"}), "catalog/a%2Fb%25c/x-1"},
		{catalogKey(QueueRef{"%", "q"}), "catalog/%25/q"},
		{catalogProjectPrefix("a/b"), "catalog/a%2Fb/"},
		{RefKey(QueueRef{"t/1", "q"}), "t%2F1/q"},
		{trashPrefix + gen, "trash/" + gen},
		{queueContainer(gen), "q-" + gen},
		{logKey(1), "log/00000000000000000001"},
		{logKey(1<<64 - 1), "log/18446744073709551615"},
		{snapKey(42), "snap/00000000000000000042"},
	} {
		if c.got != c.want {
			t.Errorf("key %q, want %q", c.got, c.want)
		}
	}
}

func TestParseRefKey(t *testing.T) {
	for _, ref := range []QueueRef{{"p", "q"}, {"", "q"}, {"a/b%c", "x"}, {"%", "%"}, {"%25", "q/r"}, {"日本", "q"}} {
		got, ok := ParseRefKey(RefKey(ref))
		if !ok || got != ref {
			t.Errorf("ParseRefKey(RefKey(%+v)) = %+v, %v", ref, got, ok)
		}
	}
	for _, k := range []string{"noslash", "%zz/q", "%41/q", "a%2fb/q", "%x/q"} {
		if ref, ok := ParseRefKey(k); ok {
			t.Errorf("ParseRefKey(%q) = %+v, want false", k, ref)
		}
	}
}

// A queue written in the layout above by hand (as an earlier version left
// it) loads: its catalog entry, its snapshot and the log after it.
func TestLoadsHandWrittenLayout(t *testing.T) {
	ctx := context.Background()
	s := newMem()
	const gen = "00112233445566778899aabbccddeeff"
	ref := QueueRef{Project: "a/b", Name: "q"}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.CreateContainer(ctx, "cistern-control"))
	must(s.CreateContainer(ctx, "q-"+gen))
	clk := newFakeClock()
	now := clk.Now().UnixNano()
	must(s.Put(ctx, "cistern-control", "catalog/a%2Fb/q",
		[]byte(`{"gen":"`+gen+`","created":1,"metadata":{"k":1}}`), nil))

	w := newLogWriter()
	w.post(&postRec{Seq: 1, Created: now, TTL: 3600, Body: []byte(`"one"`)})
	log1 := w.finish()
	st := newState()
	recs, err := decodeLog(log1)
	must(err)
	st.apply(&recs[0], 1)
	must(s.Put(ctx, "q-"+gen, "log/00000000000000000001", log1, nil))
	must(s.Put(ctx, "q-"+gen, "snap/00000000000000000001", encodeSnapshot(st, 1, now), nil))
	w = newLogWriter()
	w.post(&postRec{Seq: 2, Created: now, TTL: 3600, Body: []byte(`"two"`)})
	must(s.Put(ctx, "q-"+gen, "log/00000000000000000002", w.finish(), nil))

	e := openEngine(t, s, clk, nil)
	msgs, err := e.List(ctx, ref, ListOptions{Limit: 10, Echo: true})
	must(err)
	var got []string
	for _, m := range msgs {
		got = append(got, string(m.Body))
		if m.ID[16:] != gen[:8] {
			t.Errorf("message id %s does not end with the generation's first digits", m.ID)
		}
	}
	if want := []string{`"one"`, `"two"`}; !slices.Equal(got, want) {
		t.Fatalf("loaded bodies %q, want %q", got, want)
	}
	refs, _, err := e.AllQueues(ctx, "", 10)
	must(err)
	if len(refs) != 1 || refs[0] != ref {
		t.Fatalf("AllQueues = %+v, want [%+v]", refs, ref)
	}
}

// A catalog entry whose generation could not have been written by newID is
// refused as corrupt instead of being trusted: a short one used to panic the
// first request that made a message id.
func TestCorruptCatalogEntryRefused(t *testing.T) {
	ctx := context.Background()
	for name, entry := range map[string]string{
		"short gen":    `{"gen":"abc","created":1}`,
		"not hex":      `{"gen":"../../../etc/x","created":1}`,
		"no gen":       `{"created":1}`,
		"not json":     `{"gen":`,
		"upper hex":    `{"gen":"ABCDEF0123456789","created":1}`,
		"gen a number": `{"gen":12345678}`,
	} {
		t.Run(name, func(t *testing.T) {
			s := newMem()
			if err := s.CreateContainer(ctx, "cistern-control"); err != nil {
				t.Fatal(err)
			}
			if err := s.Put(ctx, "cistern-control", "catalog/p/q", []byte(entry), nil); err != nil {
				t.Fatal(err)
			}
			e := openEngine(t, s, newFakeClock(), nil)
			_, err := e.Post(ctx, QueueRef{"p", "q"}, "c", bodies(1, "x"))
			if !errors.Is(err, errCorrupt) {
				t.Fatalf("post to a queue with catalog entry %s: %v, want errCorrupt", entry, err)
			}
			if err := e.Adopt(ctx, QueueRef{"p", "r"}, []byte(entry)); !errors.Is(err, errCorrupt) {
				t.Fatalf("adopt %s: %v, want errCorrupt", entry, err)
			}
		})
	}
}
