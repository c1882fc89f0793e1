package server

import (
	"testing"
)

// TestDeleteWithUnknownClaim: deleting a claimed message with a claim id
// that names no live claim (unknown, malformed) is Zaqar's 400
// ClaimDoesNotExist; with another live claim's id it is 403.
func TestDeleteWithUnknownClaim(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.must(req{method: "PUT", path: "/v2/queues/cd"}, 201)
	e.must(req{method: "POST", path: "/v2/queues/cd/messages", body: `{"messages": [{"body": 1}, {"body": 2}]}`}, 201)
	var c1, c2 struct {
		Messages []struct{ ID string }
	}
	r1 := e.must(req{method: "POST", path: "/v2/queues/cd/claims?limit=1", body: `{"ttl": 300}`}, 201)
	r1.decode(t, &c1)
	r2 := e.must(req{method: "POST", path: "/v2/queues/cd/claims?limit=1", body: `{"ttl": 300}`}, 201)
	r2.decode(t, &c2)
	claim2 := r2.header.Get("Location")
	claim2 = claim2[len("/v2/queues/cd/claims/"):]
	msg1 := c1.Messages[0].ID
	for _, bad := range []string{"0123456789abcdef01234567", "not-a-claim"} {
		r := e.must(req{method: "DELETE", path: "/v2/queues/cd/messages/" + msg1 + "?claim_id=" + bad}, 400)
		if !jsonEq(r.body, []byte(`{"title": "Unable to delete", "description": "The specified claim does not exist or has expired."}`)) {
			t.Fatalf("claim %q: %s", bad, r.body)
		}
	}
	r := e.must(req{method: "DELETE", path: "/v2/queues/cd/messages/" + msg1 + "?claim_id=" + claim2}, 403)
	if !jsonEq(r.body, []byte(`{"title": "Unable to delete", "description": "This message is claimed; it cannot be deleted without a valid claim ID."}`)) {
		t.Fatalf("another live claim: %s", r.body)
	}
}
