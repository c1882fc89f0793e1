package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/cistern-mq/cistern/index"
	"github.com/cistern-mq/cistern/server/wire"
)

// wsClient is a test's socket to the websocket transport.
type wsClient struct {
	t    *testing.T
	conn *websocket.Conn
	// pushed are notification frames read while waiting for an answer.
	pushed []map[string]any
}

// wsAns is one answer frame.
type wsAns struct {
	Request map[string]json.RawMessage `json:"request"`
	Body    json.RawMessage            `json:"body"`
	Headers struct {
		Status int `json:"status"`
	} `json:"headers"`
}

// error is the "error" member of an error answer.
func (a wsAns) error() string {
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(a.Body, &e)
	return e.Error
}

// dialWS serves e's server's websocket transport on 127.0.0.1 and
// connects to it.
func dialWS(t *testing.T, e *env) *wsClient {
	t.Helper()
	hs := httptest.NewServer(e.srv.WebsocketHandler())
	t.Cleanup(hs.Close)
	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(hs.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &wsClient{t: t, conn: conn}
}

// sendRaw writes one frame of the given kind.
func (c *wsClient) sendRaw(kind int, data []byte) {
	c.t.Helper()
	if err := c.conn.WriteMessage(kind, data); err != nil {
		c.t.Fatal(err)
	}
}

// answer reads frames until an answer, keeping notifications aside.
func (c *wsClient) answer() wsAns {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		_, data, err := c.conn.ReadMessage()
		if err != nil {
			c.t.Fatal(err)
		}
		var top map[string]json.RawMessage
		if err := json.Unmarshal(data, &top); err != nil {
			c.t.Fatalf("frame %q: %v", data, err)
		}
		if _, ok := top["request"]; !ok {
			var n map[string]any
			_ = json.Unmarshal(data, &n)
			c.pushed = append(c.pushed, n)
			continue
		}
		var a wsAns
		if err := json.Unmarshal(data, &a); err != nil {
			c.t.Fatal(err)
		}
		return a
	}
}

// do sends action with client A's headers of project demo and body.
func (c *wsClient) do(action string, body map[string]any) wsAns {
	c.t.Helper()
	return c.doHeaders(action, map[string]string{"Client-ID": clientA, "X-Project-ID": project}, body)
}

func (c *wsClient) doHeaders(action string, headers map[string]string, body map[string]any) wsAns {
	c.t.Helper()
	data, err := json.Marshal(map[string]any{"action": action, "headers": headers, "body": body})
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(websocket.TextMessage, data)
	return c.answer()
}

// must does action and fails the test unless the status is want.
func (c *wsClient) must(action string, body map[string]any, want int) wsAns {
	c.t.Helper()
	a := c.do(action, body)
	if a.Headers.Status != want {
		c.t.Fatalf("%s %v: status %d, want %d: %s", action, body, a.Headers.Status, want, a.Body)
	}
	return a
}

func decodeAns[T any](t *testing.T, a wsAns) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(a.Body, &v); err != nil {
		t.Fatalf("body %s: %v", a.Body, err)
	}
	return v
}

func TestWebsocketQueues(t *testing.T) {
	e := newEnv(t, envOpts{single: true})
	c := dialWS(t, e)
	a := c.must("authenticate", nil, http.StatusOK)
	if got := decodeAns[map[string]string](t, a)["message"]; got != "Authentified." {
		t.Fatalf("authenticate: %s", a.Body)
	}
	a = c.must("queue_create", map[string]any{"queue_name": "wsq", "metadata": map[string]any{"color": "blue"}}, http.StatusCreated)
	if decodeAns[string](t, a) != "Queue wsq created." {
		t.Fatalf("create body %s", a.Body)
	}
	if a.Request == nil || string(a.Request["action"]) != `"queue_create"` || string(a.Request["api"]) != `"v2"` {
		t.Fatalf("request echo %v", a.Request)
	}
	c.must("queue_create", map[string]any{"queue_name": "wsq"}, http.StatusNoContent)
	meta := decodeAns[map[string]any](t, c.must("queue_get", map[string]any{"queue_name": "wsq"}, http.StatusOK))
	if meta["color"] != "blue" {
		t.Fatalf("queue_get: %v", meta)
	}
	list := decodeAns[struct {
		Queues []struct {
			Name string `json:"name"`
		} `json:"queues"`
	}](t, c.must("queue_list", map[string]any{"limit": 10}, http.StatusOK))
	if len(list.Queues) != 1 || list.Queues[0].Name != "wsq" {
		t.Fatalf("queue_list: %+v", list)
	}
	// The same queue seen over HTTP: one engine, two transports.
	e.must(req{method: "GET", path: "/v2/queues/wsq"}, http.StatusOK)
	c.must("message_post", map[string]any{"queue_name": "wsq", "messages": []any{map[string]any{"body": 1, "ttl": 300}}}, http.StatusCreated)
	stats := decodeAns[struct {
		Messages struct {
			Free int `json:"free"`
		} `json:"messages"`
	}](t, c.must("queue_get_stats", map[string]any{"queue_name": "wsq"}, http.StatusOK))
	if stats.Messages.Free != 1 {
		t.Fatalf("stats %+v", stats)
	}
	c.must("queue_purge", map[string]any{"queue_name": "wsq", "resource_types": []string{"messages"}}, http.StatusNoContent)
	// Without resource_types Zaqar purges messages and subscriptions.
	c.must("queue_purge", map[string]any{"queue_name": "wsq"}, http.StatusNoContent)
	c.must("queue_delete", map[string]any{"queue_name": "wsq"}, http.StatusNoContent)
	if r := e.must(req{method: "GET", path: "/v2/queues"}, http.StatusOK); strings.Contains(r.String(), "wsq") {
		t.Fatalf("queue still listed: %s", r)
	}
}

func TestWebsocketMessages(t *testing.T) {
	e := newEnv(t, envOpts{single: true})
	c := dialWS(t, e)
	a := c.must("message_post", map[string]any{"queue_name": "m", "messages": []any{
		map[string]any{"body": map[string]any{"n": 1}, "ttl": 300},
		map[string]any{"body": "two"},
		map[string]any{"body": 3},
	}}, http.StatusCreated)
	ids := decodeAns[struct {
		IDs []string `json:"message_ids"`
	}](t, a).IDs
	if len(ids) != 3 {
		t.Fatalf("message_post: %s", a.Body)
	}
	type msgs struct {
		Messages []wsMsg `json:"messages"`
	}
	l := decodeAns[msgs](t, c.must("message_list", map[string]any{"queue_name": "m", "echo": true, "limit": 2}, http.StatusOK))
	if len(l.Messages) != 2 || l.Messages[0].ID != ids[0] || string(l.Messages[0].Body) != `{"n":1}` || l.Messages[0].ClaimID != nil {
		t.Fatalf("message_list: %+v", l)
	}
	one := decodeAns[struct {
		Messages wsMsg `json:"messages"`
	}](t, c.must("message_get", map[string]any{"queue_name": "m", "message_id": ids[1]}, http.StatusOK))
	if one.Messages.ID != ids[1] || string(one.Messages.Body) != `"two"` {
		t.Fatalf("message_get: %+v", one)
	}
	many := decodeAns[msgs](t, c.must("message_get_many", map[string]any{"queue_name": "m", "message_ids": ids[:2]}, http.StatusOK))
	if len(many.Messages) != 2 {
		t.Fatalf("message_get_many: %+v", many)
	}
	c.must("message_delete", map[string]any{"queue_name": "m", "message_id": ids[0]}, http.StatusNoContent)
	c.must("message_get", map[string]any{"queue_name": "m", "message_id": ids[0]}, http.StatusNotFound)
	c.must("message_delete_many", map[string]any{"queue_name": "m", "message_ids": ids[1:2]}, http.StatusNoContent)
	pop := decodeAns[msgs](t, c.must("message_delete_many", map[string]any{"queue_name": "m", "pop": 5}, http.StatusOK))
	if len(pop.Messages) != 1 || pop.Messages[0].ID != ids[2] {
		t.Fatalf("pop: %+v", pop)
	}
	e.must(req{method: "GET", path: "/v2/queues/m/messages?echo=true"}, http.StatusOK)
	if l := decodeAns[msgs](t, c.must("message_list", map[string]any{"queue_name": "m", "echo": true}, http.StatusOK)); len(l.Messages) != 0 {
		t.Fatalf("left: %+v", l)
	}
}

func TestWebsocketClaims(t *testing.T) {
	e := newEnv(t, envOpts{single: true})
	c := dialWS(t, e)
	a := c.must("claim_create", map[string]any{"queue_name": "c"}, http.StatusNoContent)
	c.must("message_post", map[string]any{"queue_name": "c", "messages": []any{map[string]any{"body": 1}, map[string]any{"body": 2}}}, http.StatusCreated)
	a = c.must("claim_create", map[string]any{"queue_name": "c", "ttl": 120, "grace": 60, "limit": 1}, http.StatusCreated)
	cl := decodeAns[struct {
		ClaimID  string  `json:"claim_id"`
		Messages []wsMsg `json:"messages"`
	}](t, a)
	if cl.ClaimID == "" || len(cl.Messages) != 1 || cl.Messages[0].ClaimID == nil || *cl.Messages[0].ClaimID != cl.ClaimID {
		t.Fatalf("claim_create: %s", a.Body)
	}
	got := decodeAns[struct {
		TTL      int64   `json:"ttl"`
		Messages []wsMsg `json:"messages"`
	}](t, c.must("claim_get", map[string]any{"queue_name": "c", "claim_id": cl.ClaimID}, http.StatusOK))
	if got.TTL != 120 || len(got.Messages) != 1 {
		t.Fatalf("claim_get: %+v", got)
	}
	c.must("claim_update", map[string]any{"queue_name": "c", "claim_id": cl.ClaimID, "ttl": 300}, http.StatusNoContent)
	mid := cl.Messages[0].ID
	a = c.must("message_delete", map[string]any{"queue_name": "c", "message_id": mid}, http.StatusForbidden)
	if a.error() != "This message is claimed; it cannot be deleted without a valid claim ID." {
		t.Fatalf("delete claimed: %s", a.Body)
	}
	c.must("message_delete", map[string]any{"queue_name": "c", "message_id": mid, "claim_id": cl.ClaimID}, http.StatusNoContent)
	c.must("claim_delete", map[string]any{"queue_name": "c", "claim_id": cl.ClaimID}, http.StatusNoContent)
	c.must("claim_get", map[string]any{"queue_name": "c", "claim_id": cl.ClaimID}, http.StatusNotFound)
}

func TestWebsocketSubscriptions(t *testing.T) {
	e := newEnv(t, envOpts{single: true})
	c := dialWS(t, e)
	a := c.must("subscription_create", map[string]any{"queue_name": "s", "subscriber": "http://example.com/hook", "ttl": 3600}, http.StatusCreated)
	id := decodeAns[map[string]string](t, a)["subscription_id"]
	if id == "" {
		t.Fatalf("subscription_create: %s", a.Body)
	}
	list := decodeAns[struct {
		Subs []map[string]any `json:"subscriptions"`
	}](t, c.must("subscription_list", map[string]any{"queue_name": "s"}, http.StatusOK))
	if len(list.Subs) != 1 || list.Subs[0]["id"] != id {
		t.Fatalf("subscription_list: %+v", list)
	}
	got := decodeAns[map[string]any](t, c.must("subscription_get", map[string]any{"queue_name": "s", "subscription_id": id}, http.StatusOK))
	if got["subscriber"] != "http://example.com/hook" {
		t.Fatalf("subscription_get: %v", got)
	}
	a = c.must("subscription_create", map[string]any{"queue_name": "s", "subscriber": "ftp://x"}, http.StatusBadRequest)
	if !strings.Contains(a.error(), "subscriber type") {
		t.Fatalf("bad subscriber: %s", a.Body)
	}
	c.must("subscription_delete", map[string]any{"queue_name": "s", "subscription_id": id}, http.StatusNoContent)
	c.must("subscription_get", map[string]any{"queue_name": "s", "subscription_id": id}, http.StatusNotFound)
}

// TestWebsocketPush: a subscription without a subscriber is the socket's
// own; a message posted to the queue (here over HTTP) is pushed to it.
func TestWebsocketPush(t *testing.T) {
	e := newEnv(t, envOpts{single: true})
	c := dialWS(t, e)
	a := c.must("subscription_create", map[string]any{"queue_name": "p", "ttl": 3600}, http.StatusCreated)
	id := decodeAns[map[string]string](t, a)["subscription_id"]
	got := decodeAns[map[string]any](t, c.must("subscription_get", map[string]any{"queue_name": "p", "subscription_id": id}, http.StatusOK))
	if got["source"] != "p" || got["ttl"] != float64(3600) {
		t.Fatalf("subscription_get: %v", got)
	}
	e.must(req{method: "POST", path: "/v2/queues/p/messages", body: `{"messages":[{"body":{"hi":"there"},"ttl":300}]}`}, http.StatusCreated)
	_ = c.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	for len(c.pushed) == 0 {
		_, data, err := c.conn.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		var n map[string]any
		if err := json.Unmarshal(data, &n); err != nil {
			t.Fatal(err)
		}
		c.pushed = append(c.pushed, n)
	}
	n := c.pushed[0]
	if n["queue_name"] != "p" || n["Message_Type"] != "Notification" || n["body"].(map[string]any)["hi"] != "there" {
		t.Fatalf("pushed %v", n)
	}
	c.must("subscription_delete", map[string]any{"queue_name": "p", "subscription_id": id}, http.StatusNoContent)
	e.srv.ws.mu.Lock()
	left := len(e.srv.ws.subs[index.QueueRef{Project: project, Name: "p"}])
	e.srv.ws.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d sockets still subscribed after subscription_delete", left)
	}
	// A bad ttl is refused with the HTTP API's text.
	a = c.must("subscription_create", map[string]any{"queue_name": "p", "ttl": 1}, http.StatusBadRequest)
	if !strings.Contains(a.error(), "TTL for a subscription must be at least") {
		t.Fatalf("bad ttl: %s", a.Body)
	}
}

// TestWebsocketBadFrames: every bad frame gets a 400 answer and the
// socket keeps serving.
func TestWebsocketBadFrames(t *testing.T) {
	e := newEnv(t, envOpts{single: true})
	c := dialWS(t, e)
	hdr := map[string]string{"Client-ID": clientA, "X-Project-ID": project}
	cases := []struct {
		name  string
		kind  int
		frame string
		error string // contained in body.error
	}{
		{"not json", websocket.TextMessage, `{"action":`, "unexpected EOF"},
		{"not an object", websocket.TextMessage, `[1,2]`, "cannot unmarshal"},
		{"binary", websocket.BinaryMessage, `{}`, "Schema validation failed."},
		{"no action", websocket.TextMessage, `{"headers":{},"body":{}}`, "Schema validation failed."},
		{"unknown action", websocket.TextMessage, `{"action":"queue_explode","headers":{},"body":{}}`, "queue_explode is not a valid action"},
		{"no headers", websocket.TextMessage, `{"action":"queue_list","body":{}}`, "Schema validation failed."},
		{"headers not strings", websocket.TextMessage, `{"action":"queue_list","headers":{"Client-ID":1},"body":{}}`, "Schema validation failed."},
		{"missing queue_name", websocket.TextMessage, mustJSON(t, map[string]any{"action": "queue_get", "headers": hdr, "body": map[string]any{}}), "Schema validation failed."},
		{"queue_name not a string", websocket.TextMessage, mustJSON(t, map[string]any{"action": "queue_get", "headers": hdr, "body": map[string]any{"queue_name": 3}}), "Schema validation failed."},
		{"slash in queue_name", websocket.TextMessage, mustJSON(t, map[string]any{"action": "queue_get", "headers": hdr, "body": map[string]any{"queue_name": "a/claims/b"}}), "Schema validation failed."},
		{"bad queue name", websocket.TextMessage, mustJSON(t, map[string]any{"action": "queue_create", "headers": hdr, "body": map[string]any{"queue_name": "no spaces"}}), "The format of the submitted queue name or project id is not valid."},
		{"header name not a token", websocket.TextMessage, mustJSON(t, map[string]any{"action": "queue_list", "headers": map[string]string{"Client-ID": clientA, "X-Project-ID": project, "Bad Name": "x"}, "body": map[string]any{}}), "Schema validation failed."},
		{"header value with a newline", websocket.TextMessage, mustJSON(t, map[string]any{"action": "queue_list", "headers": map[string]string{"Client-ID": clientA, "X-Project-ID": project, "X-Note": "a\r\nX-Evil: 1"}, "body": map[string]any{}}), "Schema validation failed."},
		{"bad client id", websocket.TextMessage, mustJSON(t, map[string]any{"action": "queue_list", "headers": map[string]string{"Client-ID": "x", "X-Project-ID": project}, "body": map[string]any{}}), "Malformed hexadecimal UUID."},
		{"limit too large", websocket.TextMessage, mustJSON(t, map[string]any{"action": "message_list", "headers": hdr, "body": map[string]any{"queue_name": "q", "limit": 1000}}), "Limit must be at least 1 and may not be greater than 20."},
		{"post too large", websocket.TextMessage, mustJSON(t, map[string]any{"action": "message_post", "headers": hdr, "body": map[string]any{"queue_name": "q",
			"messages": []any{map[string]any{"body": strings.Repeat("x", 270000)}}}}), "Message collection size is too large."},
		{"frame too large", websocket.TextMessage, `{"x":"` + strings.Repeat("y", 400<<10) + `"}`, "Frame is larger than"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c.t = t
			c.sendRaw(tc.kind, []byte(tc.frame))
			a := c.answer()
			if a.Headers.Status != http.StatusBadRequest || !strings.Contains(a.error(), tc.error) {
				t.Fatalf("status %d body %s, want 400 with %q", a.Headers.Status, a.Body, tc.error)
			}
		})
	}
	c.t = t
	c.must("queue_list", map[string]any{}, http.StatusOK) // still serving
}

// TestWebsocketErrorsAsHTTP: an error on the socket is the HTTP API's,
// from the same mapper.
func TestWebsocketErrorsAsHTTP(t *testing.T) {
	e := newEnv(t, envOpts{single: true})
	c := dialWS(t, e)
	c.must("queue_create", map[string]any{"queue_name": "q"}, http.StatusCreated)
	hr := e.must(req{method: "GET", path: "/v2/queues/q/claims/0123456789abcdef01234567"}, http.StatusNotFound)
	var he struct {
		Title       string `json:"title"`
		Description string `json:"description"`
	}
	hr.decode(t, &he)
	a := c.must("claim_get", map[string]any{"queue_name": "q", "claim_id": "0123456789abcdef01234567"}, http.StatusNotFound)
	got := decodeAns[map[string]string](t, a)
	if got["title"] != he.Title || got["description"] != he.Description || got["error"] != he.Description {
		t.Fatalf("socket %v, HTTP %+v", got, he)
	}
}

// TestWebsocketClose: Server.Close closes the open sockets.
func TestWebsocketClose(t *testing.T) {
	e := newEnv(t, envOpts{single: true})
	c := dialWS(t, e)
	c.must("queue_list", map[string]any{}, http.StatusOK)
	e.srv.Close()
	_ = c.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, _, err := c.conn.ReadMessage(); err == nil {
		t.Fatal("the socket is still open after Server.Close")
	}
}

// TestWebsocketKeystone: with auth_strategy keystone a socket serves
// nothing before an authenticate action validates its token, and then
// serves the token's project only, its own subscriptions included.
func TestWebsocketKeystone(t *testing.T) {
	e, fk, _ := keystoneEnv(t, nil)
	fk.issue("tok-alice", "alpha", "member")
	c := dialWS(t, e)
	alpha := map[string]string{"Client-ID": clientA, "X-Project-ID": "alpha"}
	a := c.doHeaders("queue_list", alpha, map[string]any{})
	if a.Headers.Status != http.StatusForbidden || a.error() != "Not authentified." {
		t.Fatalf("before authenticate: %d %s", a.Headers.Status, a.Body)
	}
	a = c.doHeaders("authenticate", map[string]string{"X-Auth-Token": "tok-nobody"}, nil)
	if a.Headers.Status != http.StatusUnauthorized || a.error() != "Authentication failed." {
		t.Fatalf("bad token: %d %s", a.Headers.Status, a.Body)
	}
	a = c.doHeaders("authenticate", map[string]string{"X-Auth-Token": "tok-alice"}, nil)
	if a.Headers.Status != http.StatusOK {
		t.Fatalf("authenticate: %d %s", a.Headers.Status, a.Body)
	}
	if a = c.doHeaders("queue_create", alpha, map[string]any{"queue_name": "kq"}); a.Headers.Status != http.StatusCreated {
		t.Fatalf("queue_create: %d %s", a.Headers.Status, a.Body)
	}
	e.must(as("tok-alice", req{method: "GET", path: "/v2/queues/kq"}), http.StatusOK)
	beta := map[string]string{"Client-ID": clientA, "X-Project-ID": "beta"}
	for _, action := range []string{"queue_get", "subscription_create"} {
		a = c.doHeaders(action, beta, map[string]any{"queue_name": "kq"})
		if a.Headers.Status != http.StatusForbidden || !strings.Contains(a.error(), "does not match the project of the token") {
			t.Fatalf("%s in another project: %d %s", action, a.Headers.Status, a.Body)
		}
	}
}

// TestWebsocketPushBounded: a socket that does not read misses pushes
// beyond its backlog, counted, and posting never waits for it.
func TestWebsocketPushBounded(t *testing.T) {
	h := newWSHub()
	ref := index.QueueRef{Project: project, Name: "slow"}
	c := &wsConn{push: make(chan []byte, wsPushBacklog), subs: map[wsSubID]wsSub{"s1": {id: "s1", ref: ref}}}
	h.add(c)
	h.subscribe(c, ref)
	n := wsPushBacklog + 44
	ids := make([]string, n)
	msgs := make([]index.NewMessage, n)
	for i := range ids {
		ids[i] = strconv.Itoa(i)
		msgs[i] = index.NewMessage{Body: json.RawMessage(`1`), TTL: 60}
	}
	dropped := 0
	h.posted(ref, ids, msgs, func() { dropped++ }) // returns: it never blocks
	if dropped != 44 || len(c.push) != wsPushBacklog {
		t.Fatalf("dropped %d, backlog %d; want 44 and %d", dropped, len(c.push), wsPushBacklog)
	}
	// Another queue's posts do not reach the socket.
	h.posted(index.QueueRef{Project: project, Name: "other"}, ids[:1], msgs[:1], func() { t.Fatal("pushed to a socket not subscribed") })
	h.remove(c)
	if len(h.subs) != 0 || len(h.conns) != 0 {
		t.Fatalf("hub keeps %d queues, %d sockets after remove", len(h.subs), len(h.conns))
	}
}

// FuzzWebsocketFrame: any frame gets an answer with a status, never a
// panic.
func FuzzWebsocketFrame(f *testing.F) {
	for _, s := range []string{
		`{"action":"queue_list","headers":{"Client-ID":"` + clientA + `","X-Project-ID":"p"},"body":{}}`,
		`{"action":"message_post","headers":{"Client-ID":"` + clientA + `","X-Project-ID":"p"},"body":{"queue_name":"q","messages":[{"body":1}]}}`,
		`{"action":"message_delete_many","headers":{"Client-ID":"` + clientA + `","X-Project-ID":"p"},"body":{"queue_name":"q","pop":2,"message_ids":["a"]}}`,
		`{"action":"claim_create","headers":{"Client-ID":"` + clientA + `","X-Project-ID":"p"},"body":{"queue_name":"q","limit":-1}}`,
		`{"action":"subscription_create","headers":{"Client-ID":"` + clientA + `","X-Project-ID":"p"},"body":{"queue_name":"q","options":{"_retry_policy":1}}}`,
		`{"action":"authenticate"}`, `{"action":null}`, `null`, `[]`, `{"body":[]}`, `{}{}`,
	} {
		f.Add([]byte(s))
	}
	e := newEnv(f, envOpts{single: true})
	c := &wsConn{s: e.srv, id: "fuzz", host: "127.0.0.1", remote: "127.0.0.1:1", push: make(chan []byte, 1), subs: map[wsSubID]wsSub{}}
	f.Fuzz(func(t *testing.T, frame []byte) {
		a := c.handle(t.Context(), frame)
		st, _ := a.Headers["status"].(int)
		if st < 200 || st > 599 {
			t.Fatalf("frame %q: status %v", frame, a.Headers["status"])
		}
		if _, err := encodeJSON(a); err != nil {
			t.Fatalf("frame %q: answer not encodable: %v", frame, err)
		}
	})
}

// TestWebsocketSignedURL: with Keystone, a socket that never
// authenticated is served what a /share grant in the frame's headers
// allows (Zaqar's verify_signature), and nothing else.
func TestWebsocketSignedURL(t *testing.T) {
	e, fk, _ := keystoneEnv(t, nil)
	fk.issue("tok-alice", "alpha", "member")
	e.must(as("tok-alice", req{method: "PUT", path: "/v2/queues/shared"}), http.StatusCreated)
	var sh wire.ShareResult
	e.must(as("tok-alice", req{method: "POST", path: "/v2/queues/shared/share", body: `{"methods": ["GET", "POST"]}`}), http.StatusOK).decode(t, &sh)
	c := dialWS(t, e)
	h := grantHeaders(sh)
	h["X-Project-ID"] = "alpha"
	post := map[string]any{"queue_name": "shared", "messages": []any{map[string]any{"body": "signed"}}}
	if a := c.doHeaders("message_post", h, post); a.Headers.Status != http.StatusCreated {
		t.Fatalf("message_post with the grant: %d %s", a.Headers.Status, a.Body)
	}
	if a := c.doHeaders("message_list", h, map[string]any{"queue_name": "shared", "echo": true}); a.Headers.Status != http.StatusOK || !strings.Contains(string(a.Body), "signed") {
		t.Fatalf("message_list with the grant: %d %s", a.Headers.Status, a.Body)
	}
	if a := c.doHeaders("queue_get_stats", h, map[string]any{"queue_name": "shared"}); a.Headers.Status != http.StatusNotFound {
		t.Fatalf("queue_get_stats outside the grant: %d %s", a.Headers.Status, a.Body)
	}
	h["URL-Signature"] = strings.Repeat("0", len(h["URL-Signature"]))
	if a := c.doHeaders("message_list", h, map[string]any{"queue_name": "shared"}); a.Headers.Status != http.StatusNotFound {
		t.Fatalf("message_list with a forged grant: %d %s", a.Headers.Status, a.Body)
	}
}
