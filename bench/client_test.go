package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestClientAgainstFake(t *testing.T) {
	f := newFakeZaqar(t)
	ctx := t.Context()
	c := NewClient(f.srv.Client(), f.URL()+"/", "demo", "")
	if !uuidRE.MatchString(c.ClientID()) {
		t.Fatalf("Client-ID %q is not a canonical UUID", c.ClientID())
	}
	if created, err := c.CreateQueue(ctx, "q"); err != nil || !created {
		t.Fatalf("first PUT: created %v, %v", created, err)
	}
	if created, err := c.CreateQueue(ctx, "q"); err != nil || created {
		t.Fatalf("second PUT: created %v, %v; want the 204", created, err)
	}
	if err := c.PostMessages(ctx, "q", messagesDoc(5, 20, 60)); err != nil {
		t.Fatal(err)
	}
	if n, err := c.ListMessages(ctx, "q", 3); err != nil || n != 3 {
		t.Fatalf("list: %d, %v", n, err)
	}
	cl, err := c.ClaimMessages(ctx, "q", 2, 60, 60)
	if err != nil || cl.ID == "" || len(cl.Messages) != 2 {
		t.Fatalf("claim: %+v, %v", cl, err)
	}
	// Another client cannot delete a claimed message with a wrong claim.
	err = c.DeleteMessage(ctx, "q", cl.Messages[0], "not-the-claim")
	var se *StatusError
	if !errors.As(err, &se) || se.Code != 403 || se.Title != "Unable to delete" || errorClass(err) != "403" {
		t.Fatalf("delete with a wrong claim: %v", err)
	}
	for _, id := range cl.Messages {
		if err := c.DeleteMessage(ctx, "q", id, cl.ID); err != nil {
			t.Fatalf("delete %s: %v", id, err)
		}
	}
	if n, err := c.PopMessages(ctx, "q", 20); err != nil || n != 3 {
		t.Fatalf("pop: %d, %v; want the 3 left", n, err)
	}
	if cl, err := c.ClaimMessages(ctx, "q", 5, 0, 0); err != nil || cl.ID != "" || len(cl.Messages) != 0 {
		t.Fatalf("claim on an empty queue: %+v, %v; want the 204", cl, err)
	}
	if err := c.DeleteQueue(ctx, "q"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PopMessages(ctx, "q", 21); errorClass(err) != "400" {
		t.Fatalf("pop 21: %v, want a 400", err)
	}
}

// TestClientWire checks the requests the client sends and how it reads
// answers that the fake does not produce.
func TestClientWire(t *testing.T) {
	var got *http.Request
	var gotBody string
	answer := func(w http.ResponseWriter) {}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got, gotBody = r, string(body)
		answer(w)
	}))
	t.Cleanup(srv.Close)
	c := NewClient(srv.Client(), srv.URL, "proj", "tok")

	answer = func(w http.ResponseWriter) {
		// No Location header: the claim id comes from the hrefs.
		w.WriteHeader(201)
		fmt.Fprint(w, `{"messages": [{"id": "m1", "href": "/v2/queues/a%20b/messages/m1?claim_id=c9"}]}`)
	}
	cl, err := c.ClaimMessages(t.Context(), "a b", 7, 120, 0)
	if err != nil || cl.ID != "c9" || len(cl.Messages) != 1 || cl.Messages[0] != "m1" {
		t.Fatalf("claim: %+v, %v", cl, err)
	}
	if got.URL.EscapedPath() != "/v2/queues/a%20b/claims" || got.URL.RawQuery != "limit=7" || gotBody != `{"ttl": 120}` {
		t.Errorf("claim request %s %s?%s %q", got.Method, got.URL.EscapedPath(), got.URL.RawQuery, gotBody)
	}
	for h, want := range map[string]string{"X-Project-ID": "proj", "X-Auth-Token": "tok", "Client-ID": c.ClientID(), "Content-Type": "application/json", "Accept": "application/json"} {
		if got.Header.Get(h) != want {
			t.Errorf("header %s = %q, want %q", h, got.Header.Get(h), want)
		}
	}

	answer = func(w http.ResponseWriter) {
		w.WriteHeader(201)
		fmt.Fprint(w, `{"messages": [{"id": "m1", "href": "/v2/queues/q/messages/m1"}]}`)
	}
	if _, err := c.ClaimMessages(t.Context(), "q", 1, 60, 60); errorClass(err) != "decode" {
		t.Errorf("claim naming no claim id: %v, want a decode error", err)
	}
	answer = func(w http.ResponseWriter) { w.WriteHeader(200); fmt.Fprint(w, `{"messages": [`) }
	if _, err := c.PopMessages(t.Context(), "q", 1); errorClass(err) != "decode" {
		t.Errorf("truncated pop answer: %v, want a decode error", err)
	}
	answer = func(w http.ResponseWriter) {
		w.WriteHeader(503)
		fmt.Fprint(w, `{"title": "Service temporarily unavailable", "description": "Messages could not be enqueued."}`)
	}
	err = c.PostMessages(t.Context(), "q", []byte(`{"messages": [{"body": 1}]}`))
	want := "post: HTTP 503: Service temporarily unavailable: Messages could not be enqueued."
	if err == nil || err.Error() != want || errorClass(err) != "503" {
		t.Errorf("post error %v, want %q", err, want)
	}
	if got.Method != http.MethodPost || gotBody != `{"messages": [{"body": 1}]}` {
		t.Errorf("post request %s %q", got.Method, gotBody)
	}
	answer = func(w http.ResponseWriter) { w.WriteHeader(204) }
	if err := c.DeleteMessage(t.Context(), "q", "m/1", "c&2"); err != nil {
		t.Fatal(err)
	}
	if got.Method != http.MethodDelete || got.URL.EscapedPath() != "/v2/queues/q/messages/m%2F1" || got.URL.Query().Get("claim_id") != "c&2" {
		t.Errorf("delete request %s %s?%s", got.Method, got.URL.EscapedPath(), got.URL.RawQuery)
	}
}

func TestErrorClass(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&StatusError{Op: OpPost, Code: 503}, "503"},
		{fmt.Errorf("wrapped: %w", &StatusError{Code: 404}), "404"},
		{context.DeadlineExceeded, "timeout"},
		{fmt.Errorf("%s: %w: x", OpPop, errDecode), "decode"},
		{errors.New("connection refused"), "net"},
	}
	for _, tt := range tests {
		if got := errorClass(tt.err); got != tt.want {
			t.Errorf("errorClass(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestMessagesDoc(t *testing.T) {
	for _, size := range []int{1, 2, 3, 100, 4096} {
		var doc struct {
			Messages []struct {
				TTL  *int            `json:"ttl"`
				Body json.RawMessage `json:"body"`
			} `json:"messages"`
		}
		if err := json.Unmarshal(messagesDoc(3, size, 60), &doc); err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if len(doc.Messages) != 3 {
			t.Fatalf("size %d: %d messages", size, len(doc.Messages))
		}
		for _, m := range doc.Messages {
			if len(m.Body) != size || m.TTL == nil || *m.TTL != 60 {
				t.Errorf("size %d: body of %d bytes, ttl %v", size, len(m.Body), m.TTL)
			}
		}
	}
	if strings.Contains(string(messagesDoc(2, 10, 0)), "ttl") {
		t.Error("ttl 0 should leave the ttl out")
	}
	if got := string(claimDoc(0, 0)); got != "{}" {
		t.Errorf("claimDoc(0, 0) = %s", got)
	}
}
