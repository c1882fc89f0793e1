package server

import (
	"testing"

	"github.com/cistern-mq/cistern/server/wire"
)

// TestFaultRejectedBodyNeverServed is issue 11's first defect through
// HTTP: a post refused with 503 while the disk was full must never be
// served under the id of a later post.
func TestFaultRejectedBodyNeverServed(t *testing.T) {
	e, f := faultEnv(t)
	postIDs(t, e, "f", `{"messages": [{"body": "A"}]}`)
	f.SetFull(true)
	want503(t, e.do(req{method: "POST", path: "/v2/queues/f/messages", body: `{"messages": [{"body": "POISON"}]}`}), "post on a full disk")
	f.SetFull(false)
	b := postIDs(t, e, "f", `{"messages": [{"body": "B"}]}`)[0]
	var m wire.Message
	e.must(req{method: "GET", path: "/v2/queues/f/messages/" + b}, 200).decode(t, &m)
	if string(m.Body) != `"B"` {
		t.Errorf("GET of B's id reads %s, want \"B\"", m.Body)
	}
	var cl wire.Messages
	e.must(req{method: "POST", path: "/v2/queues/f/claims", body: `{"ttl": 60, "grace": 60}`}, 201).decode(t, &cl)
	for _, m := range cl.Messages {
		if string(m.Body) == `"POISON"` {
			t.Errorf("a claim hands out the refused body under id %s", m.ID)
		}
	}
}
