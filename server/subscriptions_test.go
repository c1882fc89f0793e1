package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

const subsPath = "/v2/queues/sq/subscriptions"

func createSub(t *testing.T, e *env, body string, want int) string {
	t.Helper()
	r := e.must(req{method: "POST", path: subsPath, body: body}, want)
	if want != http.StatusCreated {
		return ""
	}
	var out struct {
		ID string `json:"subscription_id"`
	}
	r.decode(t, &out)
	if out.ID == "" {
		t.Fatalf("no subscription_id in %s", r.body)
	}
	if got := r.header.Get("Location"); got != subsPath {
		t.Fatalf("location %q", got)
	}
	return out.ID
}

func TestSubscriptionCRUD(t *testing.T) {
	e := newEnv(t, envOpts{single: true})
	id := createSub(t, e, `{"subscriber": "http://127.0.0.1:9/a", "ttl": 3600, "options": {"b": 1, "a": [1,2]}}`, http.StatusCreated)

	// Creating a subscription created the queue.
	r := e.must(req{method: "GET", path: "/v2/queues"}, http.StatusOK)
	if !strings.Contains(r.String(), `"sq"`) {
		t.Fatalf("queue not created: %s", r.body)
	}
	e.clk.Advance(5 * time.Second)
	r = e.must(req{method: "GET", path: subsPath + "/" + id}, http.StatusOK)
	want := fmt.Sprintf(`{"id": %q, "source": "sq", "subscriber": "http://127.0.0.1:9/a", "ttl": 3600, "age": 5, "options": {"b": 1, "a": [1,2]}, "confirmed": false}`, id)
	if !jsonEq(r.body, []byte(want)) {
		t.Fatalf("get: %s\nwant %s", r.body, want)
	}
	if !strings.HasPrefix(r.String(), `{"id":`) || !strings.Contains(r.String(), `"options":{"b":1,"a":[1,2]}`) {
		t.Fatalf("key order or options not verbatim: %s", r.body)
	}

	// The same subscriber while unconfirmed: 201, the same id.
	if again := createSub(t, e, `{"subscriber": "http://127.0.0.1:9/a"}`, http.StatusCreated); again != id {
		t.Fatalf("second create gave %s, want %s", again, id)
	}
	// Confirmed: 409 with a location header.
	e.must(req{method: "PUT", path: subsPath + "/" + id + "/confirm", body: `{"confirmed": true}`}, http.StatusNoContent)
	r = e.must(req{method: "POST", path: subsPath, body: `{"subscriber": "http://127.0.0.1:9/a"}`}, http.StatusConflict)
	if r.header.Get("Location") != subsPath || !strings.Contains(r.String(), `"title":"Resource conflict"`) {
		t.Fatalf("409: %v %s", r.header, r.body)
	}

	// PATCH: 204; a subscriber another subscription has: 409.
	other := createSub(t, e, `{"subscriber": "https://127.0.0.1:9/b", "ttl": 60}`, http.StatusCreated)
	e.must(req{method: "PATCH", path: subsPath + "/" + id, body: `{"ttl": 120, "options": {"x": "y"}}`}, http.StatusNoContent)
	e.must(req{method: "PATCH", path: subsPath + "/" + id, body: `{"subscriber": "https://127.0.0.1:9/b"}`}, http.StatusConflict)
	r = e.must(req{method: "GET", path: subsPath + "/" + id}, http.StatusOK)
	var got subscriptionView
	r.decode(t, &got)
	if got.TTL != 120 || string(got.Options) != `{"x":"y"}` || !got.Confirmed || got.Subscriber != "http://127.0.0.1:9/a" {
		t.Fatalf("after patch: %s", r.body)
	}
	// Moving a subscriber frees its old URI for a new subscription.
	e.must(req{method: "PATCH", path: subsPath + "/" + id, body: `{"subscriber": "http://127.0.0.1:9/c"}`}, http.StatusNoContent)
	if third := createSub(t, e, `{"subscriber": "http://127.0.0.1:9/a"}`, http.StatusCreated); third == id {
		t.Fatal("the old subscriber still names the moved subscription")
	}

	// TTL expiry: "other" had 60 s.
	e.clk.Advance(61 * time.Second)
	e.must(req{method: "GET", path: subsPath + "/" + other}, http.StatusNotFound)

	// DELETE: 204, then 404; 204 again and for ids that never existed.
	e.must(req{method: "DELETE", path: subsPath + "/" + id}, http.StatusNoContent)
	e.must(req{method: "GET", path: subsPath + "/" + id}, http.StatusNotFound)
	e.must(req{method: "DELETE", path: subsPath + "/" + id}, http.StatusNoContent)
	e.must(req{method: "DELETE", path: subsPath + "/nope"}, http.StatusNoContent)
	e.must(req{method: "PATCH", path: subsPath + "/" + id, body: `{"ttl": 100}`}, http.StatusNotFound)
	e.must(req{method: "PUT", path: subsPath + "/" + id + "/confirm", body: `{"confirmed": true}`}, http.StatusNotFound)
}

func TestSubscriptionValidation(t *testing.T) {
	e := newEnv(t, envOpts{single: true})
	id := createSub(t, e, `{"subscriber": "http://127.0.0.1:9/a"}`, http.StatusCreated)
	for _, c := range []struct {
		name, method, path, body, desc string
	}{
		{"no subscriber", "POST", subsPath, `{"ttl": 100}`, "Missing parameter subscriber in body."},
		{"empty post", "POST", subsPath, ``, "Missing parameter subscriber in body."},
		{"not a dict", "POST", subsPath, `[1]`, "Subscriptions must be a dict."},
		{"scheme", "POST", subsPath, `{"subscriber": "ftp://x/"}`, "The subscriber type of subscription must be supported in the list ['http', 'https']."},
		{"mailto", "POST", subsPath, `{"subscriber": "mailto:a@b.c"}`, "The subscriber type of subscription must be supported in the list ['http', 'https']."},
		{"ttl type", "POST", subsPath, `{"subscriber": "http://x/", "ttl": "1"}`, "TTL must be an integer."},
		{"ttl min", "POST", subsPath, `{"subscriber": "http://x/", "ttl": 59}`, "The TTL for a subscription must be at least 60 seconds long."},
		{"ttl huge", "POST", subsPath, `{"subscriber": "http://x/", "ttl": 9223372036854775807}`, "The TTL seconds for a subscription plus current time must be less than 9999-12-31 23:59:59.999999."},
		{"options", "POST", subsPath, `{"subscriber": "http://x/", "options": [1]}`, "Options must be a dict."},
		{"retry policy", "POST", subsPath, `{"subscriber": "http://x/", "options": {"_retry_policy": {"minimum_delay": 30, "maximum_delay": 35}}}`, "invalid minimum_delay and maximum_delay."},
		{"empty patch", "PATCH", subsPath + "/" + id, ``, "No subscription to create."},
		{"empty object patch", "PATCH", subsPath + "/" + id, `{}`, "No subscription to create."},
		{"confirm type", "PUT", subsPath + "/" + id + "/confirm", `{"confirmed": "yes"}`, "The 'confirmed' should be boolean."},
		{"limit 0", "GET", subsPath + "?limit=0", ``, "Limit must be at least 1 and may not be greater than 20."},
		{"limit 21", "GET", subsPath + "?limit=21", ``, "Limit must be at least 1 and may not be greater than 20."},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.must(req{method: c.method, path: c.path, body: c.body}, http.StatusBadRequest)
			var er struct{ Title, Description string }
			r.decode(t, &er)
			if er.Description != c.desc {
				t.Fatalf("description %q, want %q", er.Description, c.desc)
			}
		})
	}
}

func TestSubscriptionListPaging(t *testing.T) {
	e := newEnv(t, envOpts{single: true})
	ids := map[string]bool{}
	for i := range 13 {
		ids[createSub(t, e, fmt.Sprintf(`{"subscriber": "http://127.0.0.1:9/%d"}`, i), http.StatusCreated)] = true
	}
	seen := map[string]bool{}
	next := subsPath
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		r := e.must(req{method: "GET", path: next}, http.StatusOK)
		var page struct {
			Subscriptions []subscriptionView
			Links         []struct{ Rel, Href string }
		}
		r.decode(t, &page)
		if len(page.Links) != 1 || page.Links[0].Rel != "next" {
			t.Fatalf("links: %s", r.body)
		}
		if pages == 0 && len(page.Subscriptions) != 10 {
			t.Fatalf("default page holds %d, want 10", len(page.Subscriptions))
		}
		if len(page.Subscriptions) == 0 {
			break
		}
		for _, s := range page.Subscriptions {
			if seen[string(s.ID)] {
				t.Fatalf("%s listed twice", s.ID)
			}
			seen[string(s.ID)] = true
		}
		next = page.Links[0].Href
	}
	if len(seen) != len(ids) {
		t.Fatalf("listed %d of %d", len(seen), len(ids))
	}
	r := e.must(req{method: "GET", path: subsPath + "?limit=2"}, http.StatusOK)
	if !strings.Contains(r.String(), `?limit=2\u0026marker=`) && !strings.Contains(r.String(), `?limit=2&marker=`) {
		t.Fatalf("next link keeps the limit: %s", r.body)
	}
	// A missing queue lists nothing.
	r = e.must(req{method: "GET", path: "/v2/queues/none/subscriptions"}, http.StatusOK)
	var empty struct{ Subscriptions []json.RawMessage }
	r.decode(t, &empty)
	if len(empty.Subscriptions) != 0 {
		t.Fatalf("missing queue: %s", r.body)
	}
}

func TestSubscriptionsGoWithQueue(t *testing.T) {
	e := newEnv(t, envOpts{single: true})
	for _, c := range []struct {
		name string
		drop req
	}{
		{"purge all", req{method: "POST", path: "/v2/queues/sq/purge", body: `{"resource_types": ["subscriptions"]}`}},
		{"purge default", req{method: "POST", path: "/v2/queues/sq/purge"}},
		{"queue delete", req{method: "DELETE", path: "/v2/queues/sq"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var ids []string
			for i := range 12 {
				ids = append(ids, createSub(t, e, fmt.Sprintf(`{"subscriber": "http://127.0.0.1:9/%d"}`, i), http.StatusCreated))
			}
			e.must(c.drop, http.StatusNoContent)
			for _, id := range ids {
				e.must(req{method: "GET", path: subsPath + "/" + id}, http.StatusNotFound)
			}
			// The subscriber is free again: a new subscription, a new id.
			if id := createSub(t, e, `{"subscriber": "http://127.0.0.1:9/0"}`, http.StatusCreated); id == ids[0] {
				t.Fatal("old subscription came back")
			}
			e.must(req{method: "DELETE", path: "/v2/queues/sq"}, http.StatusNoContent)
		})
	}
	// Purging messages only keeps subscriptions.
	id := createSub(t, e, `{"subscriber": "http://127.0.0.1:9/k"}`, http.StatusCreated)
	e.must(req{method: "POST", path: "/v2/queues/sq/purge", body: `{"resource_types": ["messages"]}`}, http.StatusNoContent)
	e.must(req{method: "GET", path: subsPath + "/" + id}, http.StatusOK)
}

// TestSubscriptionMailto: with an SMTP server (Options.Mailto) a mailto:
// subscriber of one plain address is taken; anything else is refused.
func TestSubscriptionMailto(t *testing.T) {
	e := newEnv(t, envOpts{single: true, server: func(o *Options) { o.Mailto = true }})
	createSub(t, e, `{"subscriber": "mailto:ops@example.com?subject=Queue%20sq", "options": {"from": "q@example.com"}}`, http.StatusCreated)
	for _, c := range []struct{ name, subscriber, desc string }{
		{"two addresses", "mailto:a@example.com,b@example.com", "The subscriber of a mailto subscription must be one address, like mailto:ops@example.com."},
		{"header injection", "mailto:a@example.com%0D%0ABcc:b@example.com", "The subscriber of a mailto subscription must be one address, like mailto:ops@example.com."},
		{"no address", "mailto:", "The subscriber of a mailto subscription must be one address, like mailto:ops@example.com."},
		{"scheme", "ftp://x/", "The subscriber type of subscription must be supported in the list ['http', 'https', 'mailto']."},
	} {
		t.Run(c.name, func(t *testing.T) {
			body, _ := json.Marshal(map[string]string{"subscriber": c.subscriber})
			r := e.must(req{method: "POST", path: subsPath, body: string(body)}, http.StatusBadRequest)
			var er struct{ Title, Description string }
			r.decode(t, &er)
			if er.Description != c.desc {
				t.Fatalf("description %q, want %q", er.Description, c.desc)
			}
		})
	}
}
