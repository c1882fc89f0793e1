package server

import (
	"fmt"
	"strings"
	"testing"

	"github.com/cistern-mq/cistern/server/wire"
)

// postOf is a POST /messages body of n tiny messages.
func postOf(n int) string {
	return `{"messages": [` + strings.TrimSuffix(strings.Repeat(`{"body":1},`, n), ",") + `]}`
}

// TestPostMessageCount: a post carries at most max_messages_per_post
// messages, refused before anything is committed. 23,829 tiny messages fit
// Zaqar's 256 KiB and made a 596 KB Location header that python's
// http.client and default proxy buffers refuse after the commit.
func TestPostMessageCount(t *testing.T) {
	e := newEnv(t, envOpts{})
	if body := postOf(23829); len(body) > 262144 {
		t.Fatalf("the issue's post is %d bytes", len(body))
	}
	for _, n := range []int{23829, 101} {
		r := e.must(req{method: "POST", path: "/v2/queues/n/messages", body: postOf(n)}, 400)
		want := fmt.Sprintf(`{"title": "Invalid API request", "description": "Message collection may hold at most 100 messages; this one holds %d."}`, n)
		if !jsonEq(r.body, []byte(want)) {
			t.Errorf("%d messages: %s, want %s", n, r.body, want)
		}
	}
	var st wire.Stats
	e.must(req{method: "GET", path: "/v2/queues/n/stats"}, 200).decode(t, &st)
	if st.Messages.Total != 0 {
		t.Fatalf("refused posts committed %d messages", st.Messages.Total)
	}

	r := e.must(req{method: "POST", path: "/v2/queues/n/messages", body: postOf(100)}, 201)
	var res wire.PostResult
	r.decode(t, &res)
	// 100 ids keep the Location header within a 4 KiB proxy buffer.
	if loc := r.header.Get("Location"); len(res.Resources) != 100 || len(loc) > 3000 || strings.Count(loc, ",") != 99 {
		t.Errorf("100 messages: %d resources, Location of %d bytes", len(res.Resources), len(loc))
	}

	small := newEnv(t, envOpts{server: func(o *Options) { o.Limits.MaxMessagesPerPost = 2 }})
	small.must(req{method: "POST", path: "/v2/queues/n/messages", body: postOf(2)}, 201)
	small.must(req{method: "POST", path: "/v2/queues/n/messages", body: postOf(3)}, 400)
}
