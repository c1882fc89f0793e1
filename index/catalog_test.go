package index

import (
	"encoding/json"
	"fmt"
	"testing"
)

// A queue reopens from the snapshot its catalog entry records, and from a
// listing when the entry predates that field (data written by an older
// version) or names a snapshot that is gone.
func TestLoadFromRecordedSnapshot(t *testing.T) {
	for _, tc := range []struct {
		name  string
		alter func(ent map[string]any)
	}{
		{"recorded", func(map[string]any) {}},
		{"entry of an older version", func(ent map[string]any) { delete(ent, "snap") }},
		{"recorded snapshot gone", func(ent map[string]any) { ent["snap"] = 999_999 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := newMem()
			small := func(o *Options) { o.SnapshotLogs = 3 }
			e := openEngine(t, mem, newFakeClock(), small)
			q := QueueRef{Project: "p", Name: "q"}
			var ids []string
			for i := range 20 {
				got, err := e.Post(ctx, q, "c", []NewMessage{{Body: json.RawMessage(fmt.Sprint(i)), TTL: 300}})
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, got...)
			}
			if err := e.DeleteMessages(ctx, q, ids[:5]); err != nil {
				t.Fatal(err)
			}
			e.Close()
			data, err := mem.Get(ctx, controlContainer, catalogKey(q), nil)
			if err != nil {
				t.Fatal(err)
			}
			var ent map[string]any
			if err := json.Unmarshal(data, &ent); err != nil {
				t.Fatal(err)
			}
			if s, _ := ent["snap"].(float64); s == 0 {
				t.Fatalf("catalog entry records no snapshot after 20 logs: %s", data)
			}
			tc.alter(ent)
			data, _ = json.Marshal(ent)
			if err := mem.Put(ctx, controlContainer, catalogKey(q), data, nil); err != nil {
				t.Fatal(err)
			}
			e2 := openEngine(t, mem, newFakeClock(), small)
			msgs, err := e2.List(ctx, q, ListOptions{Limit: 20, Echo: true})
			if err != nil || len(msgs) != 15 {
				t.Fatalf("after reopen: %d messages, %v; want 15", len(msgs), err)
			}
			for i, m := range msgs {
				if m.ID != ids[5+i] || string(m.Body) != fmt.Sprint(5+i) {
					t.Errorf("message %d = %s %s, want %s %d", i, m.ID, m.Body, ids[5+i], 5+i)
				}
			}
		})
	}
}
