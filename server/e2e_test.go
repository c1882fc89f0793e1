package server

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cistern-mq/cistern/server/wire"
)

// TestHeaderRules covers Zaqar's global request rules, route by route.
func TestHeaderRules(t *testing.T) {
	e := newEnv(t, envOpts{server: func(o *Options) { o.PublicMetrics = true }})
	long := strings.Repeat("p", 257)
	for _, c := range []struct {
		name   string
		req    req
		status int
		want   string
	}{
		{"uuid hyphenless", req{method: "GET", path: "/v2/queues", header: map[string]string{"Client-ID": "3381af922b9e11e3b19171861300734c"}}, 200, ""},
		{"uuid braces", req{method: "GET", path: "/v2/queues", header: map[string]string{"Client-ID": "{3381af92-2b9e-11e3-b191-71861300734c}"}}, 200, ""},
		{"uuid urn", req{method: "GET", path: "/v2/queues", header: map[string]string{"Client-ID": "urn:uuid:3381af92-2b9e-11e3-b191-71861300734c"}}, 200, ""},
		{"uuid short", req{method: "GET", path: "/v2/queues", header: map[string]string{"Client-ID": "3381af92-2b9e-11e3-b191-71861300734"}}, 400,
			`{"title": "Wrong UUID value", "description": "Malformed hexadecimal UUID."}`},
		{"client id on home", req{method: "GET", path: "/v2/", header: map[string]string{"Client-ID": "-"}}, 400, ""},
		{"client id on ping", req{method: "GET", path: "/v2/ping", header: map[string]string{"Client-ID": "-"}}, 400, ""},
		{"project on ping", req{method: "GET", path: "/v2/ping", header: map[string]string{"X-Project-ID": "-"}}, 400, ""},
		{"long project on queue route", req{method: "GET", path: "/v2/queues/q", header: map[string]string{"X-Project-ID": long}}, 400,
			`{"title": "Invalid queue identification", "description": "The format of the submitted queue name or project id is not valid."}`},
		// Zaqar checks the project only on queue routes; Cistern on every one.
		{"long project on list", req{method: "GET", path: "/v2/queues", header: map[string]string{"X-Project-ID": long}}, 400,
			`{"title": "Invalid project identification", "description": "The format of the submitted project id is not valid: the project id is longer than 256 bytes."}`},
		{"dotted queue name", req{method: "GET", path: "/v2/queues/a.b_c-1"}, 200, ""},
		{"64-char name", req{method: "PUT", path: "/v2/queues/" + strings.Repeat("n", 64)}, 201, ""},
		{"unicode name", req{method: "PUT", path: "/v2/queues/caf%C3%A9"}, 400, ""},
		{"accept json", req{method: "GET", path: "/v2/queues", header: map[string]string{"Accept": "application/json"}}, 200, ""},
		{"accept wildcard", req{method: "GET", path: "/v2/queues", header: map[string]string{"Accept": "text/html, application/*;q=0.2"}}, 200, ""},
		{"accept q=0", req{method: "GET", path: "/v2/queues", header: map[string]string{"Accept": "application/json;q=0"}}, 406, ""},
		{"accept on /", req{method: "GET", path: "/", header: map[string]string{"Accept": "text/plain", "Client-ID": "-"}}, 406, ""},
		{"form body", req{method: "PUT", path: "/v2/queues/f", body: "a=b", header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}, 400,
			`{"title": "Invalid Content-Type", "description": "Endpoint does not accept ` + "`application/x-www-form-urlencoded`" + ` content; currently supported media type is ` + "`application/json`" + `; specify proper client-side media type with the \"Content-Type\" header."}`},
		{"head queue", req{method: "HEAD", path: "/v2/queues/q"}, 405, ""},
		{"headers before 405", req{method: "POST", path: "/v2/queues/q", header: map[string]string{"Client-ID": "-"}}, 400, ""},
		{"unknown route skips headers", req{method: "GET", path: "/v2/nothing", header: map[string]string{"Client-ID": "-"}}, 404, `{"title": "404 Not Found"}`},
		{"v2 without slash", req{method: "GET", path: "/v2"}, 404, ""},
		{"metrics needs no headers", req{method: "GET", path: "/metrics", header: map[string]string{"Client-ID": "-", "X-Project-ID": "-", "Accept": "text/plain"}}, 200, ""},
		{"healthz needs no headers", req{method: "GET", path: "/healthz", header: map[string]string{"Client-ID": "-", "X-Project-ID": "-", "Accept": "text/plain"}}, 204, ""},
		{"readyz needs no headers", req{method: "GET", path: "/readyz", header: map[string]string{"Client-ID": "-", "X-Project-ID": "-", "Accept": "text/plain"}}, 204, ""},
		{"head readyz", req{method: "HEAD", path: "/readyz", header: map[string]string{"Client-ID": "-", "X-Project-ID": "-"}}, 204, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.do(c.req)
			if r.status != c.status {
				t.Fatalf("status %d, want %d: %s", r.status, c.status, r.body)
			}
			if c.want != "" && !jsonEq(r.body, []byte(c.want)) {
				t.Fatalf("body %s, want %s", r.body, c.want)
			}
		})
	}

	t.Run("options", func(t *testing.T) {
		r := e.must(req{method: "OPTIONS", path: "/v2/queues/q/messages"}, 200)
		if got := r.header.Get("Allow"); got != "DELETE, GET, POST, OPTIONS" {
			t.Fatalf("Allow %q", got)
		}
	})
	t.Run("request id", func(t *testing.T) {
		r := e.must(req{method: "GET", path: "/v2/queues", header: map[string]string{"X-Openstack-Request-Id": "req-mine"}}, 200)
		if got := r.header.Get("X-Openstack-Request-Id"); got != "req-mine" {
			t.Fatalf("echoed %q", got)
		}
		r = e.must(req{method: "GET", path: "/v2/queues"}, 200)
		if got := r.header.Get("X-Openstack-Request-Id"); !strings.HasPrefix(got, "req-") || len(got) != 40 {
			t.Fatalf("generated %q", got)
		}
	})
	t.Run("echo across spellings", func(t *testing.T) {
		e.must(req{method: "POST", path: "/v2/queues/echo/messages", body: `{"messages": [{"body": 1}]}`,
			header: map[string]string{"Client-ID": "{3381AF92-2B9E-11E3-B191-71861300734C}"}}, 201)
		r := e.must(req{method: "GET", path: "/v2/queues/echo/messages"}, 200)
		if !jsonEq(r.body, []byte(`{"messages": [], "links": []}`)) {
			t.Fatalf("the same client saw its own message: %s", r.body)
		}
	})
	t.Run("metrics", func(t *testing.T) {
		e.must(req{method: "GET", path: "/metrics"}, 200)
		text := e.metrics()
		for _, want := range []string{
			`cistern_http_requests_total{code="200",method="GET",route="/v2/queues"}`,
			`cistern_http_requests_total{code="404",method="GET",route="unmatched"}`,
			`cistern_http_request_duration_seconds_bucket{method="PUT",route="/v2/queues/{queue_name}"`,
		} {
			if !strings.Contains(text, want) {
				t.Errorf("metrics lack %s", want)
			}
		}
	})
}

// TestQueues covers metadata validation, json-patch and listing.
func TestQueues(t *testing.T) {
	e := newEnv(t, envOpts{})
	for _, c := range []struct {
		name, body, desc string
	}{
		{"ttl low", `{"_default_message_ttl": 30}`, "_default_message_ttl can not exceed 1209600 seconds, and must be at least 60 seconds long."},
		{"ttl type", `{"_default_message_ttl": "1"}`, "_default_message_ttl must be integer."},
		{"post size zero", `{"_max_messages_post_size": 0}`, "_max_messages_post_size can not exceed 262144,  and must be at least greater than 0."},
		{"post size high", `{"_max_messages_post_size": 262145}`, "_max_messages_post_size can not exceed 262144,  and must be at least greater than 0."},
		{"delay high", `{"_default_message_delay": 901}`, "The TTL can not exceed 900 seconds, and must be at least 0 seconds long."},
		{"claim count type", `{"_max_claim_count": 1.5}`, "_max_claim_count must be integer."},
		{"dlq ttl", `{"_dead_letter_queue_messages_ttl": 59}`, "The TTL for a message may not exceed 1209600 seconds, and must be at least 60 seconds long."},
		{"encrypt type", `{"_enable_encrypt_messages": "yes"}`, "_enable_encrypt_messages must be boolean."},
		{"encrypt", `{"_enable_encrypt_messages": true}`, "_enable_encrypt_messages is not supported by this server."},
		{"retry policy type", `{"_retry_policy": [1]}`, "retry_policy must be a dict."},
		{"retry policy delays", `{"_retry_policy": {"minimum_delay": 10, "maximum_delay": 15}}`, "invalid minimum_delay and maximum_delay."},
		{"retry backoff", `{"_retry_policy": {"retry_backoff_function": "cubic"}}`, "invalid retry_backoff_function."},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.must(req{method: "PUT", path: "/v2/queues/v", body: c.body}, 400)
			if want := `{"title": "Invalid API request", "description": ` + fmt.Sprintf("%q", c.desc) + `}`; !jsonEq(r.body, []byte(want)) {
				t.Fatalf("body %s, want %s", r.body, want)
			}
		})
	}
	e.must(req{method: "PUT", path: "/v2/queues/v", body: `[1]`}, 400)
	e.must(req{method: "PUT", path: "/v2/queues/v", body: `{"_default_message_ttl": null, "_enable_encrypt_messages": false, "_dead_letter_queue": "dlq", "_max_claim_count": 3}`}, 201)

	patch := func(body string, status int) *resp {
		t.Helper()
		return e.must(req{method: "PATCH", path: "/v2/queues/v", body: body, header: map[string]string{"Content-Type": wire.PatchContentType + "; charset=utf-8"}}, status)
	}
	r := patch(`[{"op": "replace", "path": "/metadata/nope", "value": 1}]`, 409)
	if !jsonEq(r.body, []byte(`{"title": "Resource conflict", "description": "Can't replace non-existent object nope."}`)) {
		t.Fatalf("409 body %s", r.body)
	}
	patch(`[{"op": "remove", "path": "/metadata/nope"}]`, 409)
	patch(`[{"op": "remove", "path": "/metadata/_default_message_delay"}, {"op": "replace", "path": "/metadata/_default_message_ttl", "value": 120}]`, 200)
	r = patch(`[{"op": "replace", "path": "/metadata/_default_message_ttl", "value": 5}]`, 400)
	if !jsonEq(r.body, []byte(`{"title": "Invalid request body", "description": "_default_message_ttl can not exceed 1209600 seconds, and must be at least 60 seconds long."}`)) {
		t.Fatalf("bad reserved value: %s", r.body)
	}
	r = patch(`[{"op": "remove", "path": "/metadata/_max_claim_count"}, {"op": "add", "path": "/metadata/k", "value": {"x": [1, 2]}}]`, 200)
	var meta wire.Object
	r.decode(t, &meta)
	if v, _ := meta.Get("_default_message_ttl"); string(v) != "120" {
		t.Fatalf("ttl after patch: %s", r.body)
	}
	if v, _ := meta.Get("_max_claim_count"); string(v) != "null" {
		t.Fatalf("removed key should show its default: %s", r.body)
	}
	e.must(req{method: "PATCH", path: "/v2/queues/missing", body: `[{"op": "add", "path": "/metadata/a", "value": 1}]`,
		header: map[string]string{"Content-Type": wire.PatchContentType}}, 404)
	e.must(req{method: "PATCH", path: "/v2/queues/v", header: map[string]string{"Content-Type": wire.PatchContentType}}, 400)
	// A message posted without a ttl takes the queue's default.
	e.must(req{method: "POST", path: "/v2/queues/v/messages", body: `{"messages": [{"body": 1}]}`}, 201)
	r = e.must(req{method: "GET", path: "/v2/queues/v/messages?echo=true"}, 200)
	if !strings.Contains(r.String(), `"ttl":120`) {
		t.Fatalf("queue default ttl not used: %s", r.body)
	}

	for _, n := range []string{"alpha", "beta", "gamma", "delta"} {
		e.must(req{method: "PUT", path: "/v2/queues/" + n, body: `{"color": "` + map[bool]string{true: "red", false: "blue"}[n < "c"] + `", "size": 3}`}, 201)
	}
	list := func(query string) []string {
		t.Helper()
		var l wire.QueueList
		e.must(req{method: "GET", path: "/v2/queues" + query}, 200).decode(t, &l)
		var names []string
		for _, q := range l.Queues {
			names = append(names, q.Name)
		}
		return names
	}
	for _, c := range []struct{ query, want string }{
		{"", "alpha,beta,delta,gamma,v"},
		{"?limit=2", "alpha,beta"},
		{"?marker=beta&limit=2", "delta,gamma"},
		{"?name=a", "alpha,beta,delta,gamma"},
		{"?name=mm", "gamma"},
		{"?color=red", "alpha,beta"},
		{"?color=red&limit=1&marker=alpha", "beta"},
		{"?size=3&color=blue", "delta,gamma"},
		{"?size=4", ""},
	} {
		if got := strings.Join(list(c.query), ","); got != c.want {
			t.Errorf("list%s = %s, want %s", c.query, got, c.want)
		}
	}
	var l wire.QueueList
	e.must(req{method: "GET", path: "/v2/queues?color=red&limit=1"}, 200).decode(t, &l)
	if l.Links[0].Href != "/v2/queues?limit=1&color=red&marker=alpha" {
		t.Errorf("filtered next link %s", l.Links[0].Href)
	}
	e.must(req{method: "GET", path: "/v2/queues?with_count=true&limit=1"}, 200).decode(t, &l)
	if l.Count != 5 || len(l.Queues) != 1 {
		t.Errorf("with_count: %+v", l)
	}
	r = e.must(req{method: "GET", path: "/v2/queues?detailed=maybe"}, 400)
	if !jsonEq(r.body, []byte(`{"title": "Invalid parameter", "description": "The \"detailed\" parameter is invalid. The value of the parameter must be \"true\" or \"false\"."}`)) {
		t.Errorf("bool error %s", r.body)
	}
	e.must(req{method: "GET", path: "/v2/queues?limit=x"}, 400)
	e.must(req{method: "GET", path: "/v2/queues?limit=0"}, 400)
	// Other projects see none of it.
	e.must(req{method: "GET", path: "/v2/queues", header: map[string]string{"X-Project-ID": "other"}}, 200)
	if got := e.do(req{method: "GET", path: "/v2/queues", header: map[string]string{"X-Project-ID": "other"}}); !jsonEq(got.body, []byte(`{"queues": [], "links": []}`)) {
		t.Errorf("project isolation: %s", got.body)
	}
	e.must(req{method: "POST", path: "/v2/queues/v/purge"}, 204)
	e.must(req{method: "POST", path: "/v2/queues/v/purge", body: `{}`}, 400)
	e.must(req{method: "POST", path: "/v2/queues/v/purge", body: `{"resource_types": []}`}, 204)
}

// TestMessages covers listing options, ids, delays, TTL expiry and claims.
func TestMessages(t *testing.T) {
	e := newEnv(t, envOpts{})
	post := func(q, body string) []string {
		t.Helper()
		var res wire.PostResult
		e.must(req{method: "POST", path: "/v2/queues/" + q + "/messages", body: body}, 201).decode(t, &res)
		ids := make([]string, len(res.Resources))
		for i, r := range res.Resources {
			ids[i] = r[strings.LastIndex(r, "/")+1:]
		}
		return ids
	}
	ids := post("m", `{"messages": [{"body": 0}, {"body": 1, "delay": 120}, {"body": 2, "ttl": 60}]}`)

	// No default delay: listings show the delayed message, claims skip it.
	var l wire.MessageList
	e.must(req{method: "GET", path: "/v2/queues/m/messages?echo=true"}, 200).decode(t, &l)
	if len(l.Messages) != 3 {
		t.Fatalf("listing: %+v", l)
	}
	var cl wire.Messages
	e.must(req{method: "POST", path: "/v2/queues/m/claims?limit=5"}, 201).decode(t, &cl)
	if len(cl.Messages) != 2 || cl.Messages[0].ID != ids[0] || cl.Messages[1].ID != ids[2] {
		t.Fatalf("claim took the delayed message: %+v", cl)
	}
	claimID := cl.Messages[0].Href[strings.Index(cl.Messages[0].Href, "=")+1:]
	e.must(req{method: "POST", path: "/v2/queues/m/claims"}, 204)
	e.clk.Advance(121 * time.Second)
	e.must(req{method: "POST", path: "/v2/queues/m/claims"}, 201)

	// The claimed messages are hidden unless include_claimed.
	e.must(req{method: "GET", path: "/v2/queues/m/messages?echo=true"}, 200).decode(t, &l)
	if len(l.Messages) != 0 {
		t.Fatalf("claimed messages listed: %+v", l)
	}
	e.must(req{method: "GET", path: "/v2/queues/m/messages?echo=true&include_claimed=true&limit=1"}, 200).decode(t, &l)
	if len(l.Messages) != 1 || !strings.Contains(l.Messages[0].Href, "?claim_id="+claimID) {
		t.Fatalf("include_claimed: %+v", l)
	}
	// A message id works as a marker.
	e.must(req{method: "GET", path: "/v2/queues/m/messages?echo=true&include_claimed=true&marker=" + ids[0]}, 200).decode(t, &l)
	if len(l.Messages) != 2 || l.Messages[0].ID != ids[1] {
		t.Fatalf("id marker: %+v", l)
	}
	e.must(req{method: "GET", path: "/v2/queues/m/messages?echo=true&include_claimed=true&marker=bogus"}, 200).decode(t, &l)
	if len(l.Messages) != 0 {
		t.Fatalf("bogus marker listed %+v", l)
	}

	// Claims expire with the clock; so do messages.
	e.must(req{method: "GET", path: "/v2/queues/m/claims/" + claimID}, 200)
	r := e.must(req{method: "DELETE", path: "/v2/queues/m/messages/" + ids[1] + "?claim_id=" + claimID}, 403)
	_ = r
	e.clk.Advance(301 * time.Second)
	e.must(req{method: "GET", path: "/v2/queues/m/claims/" + claimID}, 404)
	r = e.must(req{method: "DELETE", path: "/v2/queues/m/messages/" + ids[0] + "?claim_id=" + claimID}, 400)
	if !jsonEq(r.body, []byte(`{"title": "Unable to delete", "description": "A claim was specified, but the message is not currently claimed."}`)) {
		t.Fatalf("not claimed: %s", r.body)
	}
	e.clk.Advance(time.Hour)
	e.must(req{method: "GET", path: "/v2/queues/m/messages/" + ids[0]}, 404)

	// A queue with a default delay hides delayed messages from listings.
	e.must(req{method: "PUT", path: "/v2/queues/d", body: `{"_default_message_delay": 30}`}, 201)
	post("d", `{"messages": [{"body": "late"}, {"body": "now", "delay": 0}]}`)
	e.must(req{method: "GET", path: "/v2/queues/d/messages?echo=true"}, 200).decode(t, &l)
	if len(l.Messages) != 1 || string(l.Messages[0].Body) != `"now"` || strings.Contains(l.Links[0].Href, "include_delayed") {
		t.Fatalf("default delay: %+v", l)
	}
	e.must(req{method: "GET", path: "/v2/queues/d/messages?echo=true&include_delayed=true"}, 200).decode(t, &l)
	if len(l.Messages) != 2 {
		t.Fatalf("include_delayed: %+v", l)
	}
	var st wire.Stats
	e.must(req{method: "GET", path: "/v2/queues/d/stats"}, 200).decode(t, &st)
	if st.Messages.Free != 2 || st.Messages.Total != 2 {
		t.Fatalf("stats with a delayed message: %+v", st)
	}

	for _, c := range []struct {
		name   string
		req    req
		status int
		want   string
	}{
		{"delay range", req{method: "POST", path: "/v2/queues/m/messages", body: `{"messages": [{"body": 1, "delay": 901}]}`}, 400,
			`{"title": "Invalid API request", "description": "The Delay TTL for a message may not exceed 900 seconds,and must be at least 0 seconds long."}`},
		{"ttl type", req{method: "POST", path: "/v2/queues/m/messages", body: `{"messages": [{"body": 1, "ttl": "60"}]}`}, 400, ""},
		{"too many ids", req{method: "GET", path: "/v2/queues/m/messages?ids=" + strings.Repeat("a,", 20) + "b"}, 400,
			`{"title": "Invalid API request", "description": "Limit must be at least 1 and may not be greater than 20."}`},
		{"too many delete ids", req{method: "DELETE", path: "/v2/queues/m/messages?ids=" + strings.Repeat("a,", 20) + "b"}, 400,
			`{"title": "Invalid API request", "description": "ids parameter should have at least 1 and not greater than 20 values."}`},
		{"pop not int", req{method: "DELETE", path: "/v2/queues/m/messages?pop=x"}, 400,
			`{"title": "Invalid parameter", "description": "The \"pop\" parameter is invalid. The value must be an integer."}`},
		{"echo not bool", req{method: "GET", path: "/v2/queues/m/messages?echo=2"}, 400, ""},
		{"claim ttl type", req{method: "POST", path: "/v2/queues/m/claims", body: `{"ttl": "300"}`}, 400,
			`{"title": "Invalid request body", "description": "The value of the \"ttl\" field must be a int."}`},
		{"claim ttl range", req{method: "POST", path: "/v2/queues/m/claims", body: `{"ttl": 43201}`}, 400,
			`{"title": "Invalid API request", "description": "The TTL for a claim may not exceed 43200 seconds, and must be at least 60 seconds long."}`},
		{"claim not object", req{method: "POST", path: "/v2/queues/m/claims", body: `[1]`}, 400,
			`{"title": "Invalid request body", "description": "Document type not supported."}`},
		{"claim patch empty", req{method: "PATCH", path: "/v2/queues/m/claims/x"}, 400,
			`{"title": "Invalid request body", "description": "Request body can not be empty"}`},
		{"claim patch grace", req{method: "PATCH", path: "/v2/queues/m/claims/x", body: `{"ttl": 60, "grace": 1}`}, 400, ""},
		{"claim missing queue", req{method: "POST", path: "/v2/queues/nothing/claims"}, 204, ""},
		{"pop missing queue", req{method: "DELETE", path: "/v2/queues/nothing/messages?pop=3"}, 200, `{"messages": []}`},
		{"ids missing queue", req{method: "GET", path: "/v2/queues/nothing/messages?ids=a"}, 404, ""},
		{"delete missing message", req{method: "DELETE", path: "/v2/queues/nothing/messages/abc"}, 204, ""},
		{"stats missing queue", req{method: "GET", path: "/v2/queues/nothing/stats"}, 200, `{"messages": {"claimed": 0, "free": 0, "total": 0}}`},
		{"subscriptions limit", req{method: "GET", path: "/v2/queues/m/subscriptions?limit=21"}, 400, ""},
		{"subscription patch", req{method: "PATCH", path: "/v2/queues/m/subscriptions/s", body: `{"ttl": 100}`}, 404, ""},
		{"subscription confirm", req{method: "PUT", path: "/v2/queues/m/subscriptions/s/confirm", body: `{"confirmed": true}`}, 404, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.do(c.req)
			if r.status != c.status {
				t.Fatalf("status %d, want %d: %s", r.status, c.status, r.body)
			}
			if c.want != "" && !jsonEq(r.body, []byte(c.want)) {
				t.Fatalf("body %s, want %s", r.body, c.want)
			}
		})
	}
}

// TestConcurrentClaims: consumers claiming and deleting in parallel never
// get one message twice, and every message is consumed.
func TestConcurrentClaims(t *testing.T) {
	e := newEnv(t, envOpts{real: true})
	const n = 60
	var b strings.Builder
	b.WriteString(`{"messages": [`)
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, `{"body": %d}`, i)
	}
	b.WriteString("]}")
	e.must(req{method: "POST", path: "/v2/queues/work/messages", body: b.String()}, 201)

	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			for {
				r := e.do(req{method: "POST", path: "/v2/queues/work/claims?limit=4", body: `{"ttl": 60, "grace": 60}`})
				if r.status == http.StatusNoContent {
					return
				}
				if r.status != http.StatusCreated {
					t.Errorf("claim: %d %s", r.status, r.body)
					return
				}
				var cl wire.Messages
				r.decode(t, &cl)
				for _, m := range cl.Messages {
					mu.Lock()
					seen[m.ID]++
					mu.Unlock()
					if d := e.do(req{method: "DELETE", path: m.Href}); d.status != http.StatusNoContent {
						t.Errorf("delete %s: %d %s", m.Href, d.status, d.body)
					}
				}
			}
		})
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("consumed %d distinct messages, want %d", len(seen), n)
	}
	for id, c := range seen {
		if c != 1 {
			t.Fatalf("message %s claimed %d times", id, c)
		}
	}
}
