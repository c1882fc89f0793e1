package server

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/cistern-mq/cistern/drivers/drivertest"
	"github.com/cistern-mq/cistern/server/wire"
	"github.com/cistern-mq/cistern/topics"
)

// zaqarError decodes an error body.
func zaqarError(t *testing.T, r *resp) (title, description string) {
	t.Helper()
	var b struct{ Title, Description string }
	r.decode(t, &b)
	return b.Title, b.Description
}

// TestTopicLifecycle: create (201, then 204), metadata with a topic's
// reserved defaults, PATCH, DELETE, and 404 for a topic that does not
// exist, as Zaqar's topic resource answers.
func TestTopicLifecycle(t *testing.T) {
	e := newEnv(t, envOpts{})
	r := e.must(req{method: "PUT", path: "/v2/topics/news", body: `{"color": "red", "_default_message_ttl": 300}`}, http.StatusCreated)
	if loc := r.header.Get("Location"); loc != "/v2/topics/news" {
		t.Fatalf("Location %q", loc)
	}
	e.must(req{method: "PUT", path: "/v2/topics/news", body: `{"color": "blue"}`}, http.StatusNoContent)
	want := `{"color": "red", "_default_message_ttl": 300, "_max_messages_post_size": 262144, "_default_message_delay": 0}`
	if r := e.must(req{method: "GET", path: "/v2/topics/news"}, http.StatusOK); !jsonEq(r.body, []byte(want)) {
		t.Fatalf("GET %s, want %s", r.body, want)
	}
	patch := map[string]string{"Content-Type": wire.PatchContentType}
	r = e.must(req{method: "PATCH", path: "/v2/topics/news", header: patch,
		body: `[{"op": "add", "path": "/metadata/size", "value": 3}, {"op": "remove", "path": "/metadata/_default_message_delay"}]`}, http.StatusOK)
	want = `{"color": "red", "_default_message_ttl": 300, "size": 3, "_max_messages_post_size": 262144, "_default_message_delay": 0}`
	if !jsonEq(r.body, []byte(want)) {
		t.Fatalf("PATCH %s, want %s", r.body, want)
	}
	// A queue's reserved key is no topic's: removing it unset conflicts.
	e.must(req{method: "PATCH", path: "/v2/topics/news", header: patch,
		body: `[{"op": "remove", "path": "/metadata/_dead_letter_queue"}]`}, http.StatusConflict)

	e.must(req{method: "DELETE", path: "/v2/topics/news"}, http.StatusNoContent)
	r = e.must(req{method: "GET", path: "/v2/topics/news"}, http.StatusNotFound)
	if _, d := zaqarError(t, r); d != "Topic news does not exist for project demo" {
		t.Fatalf("404 description %q", d)
	}
	e.must(req{method: "PATCH", path: "/v2/topics/news", header: patch,
		body: `[{"op": "add", "path": "/metadata/a", "value": 1}]`}, http.StatusNotFound)
	e.must(req{method: "DELETE", path: "/v2/topics/news"}, http.StatusNoContent)

	r = e.must(req{method: "PUT", path: "/v2/topics/bad~name"}, http.StatusBadRequest)
	if title, _ := zaqarError(t, r); title != "Invalid topic identification" {
		t.Fatalf("title %q", title)
	}
	e.must(req{method: "PUT", path: "/v2/topics/" + strings.Repeat("t", 65)}, http.StatusBadRequest)
	e.must(req{method: "PUT", path: "/v2/topics/news", body: `{"_default_message_ttl": 1}`}, http.StatusBadRequest)
}

// TestTopicQueueNoCollision: a queue and a topic of one name are two
// things: metadata, messages, subscriptions and deletion of one leave the
// other alone, and each listing shows only its own kind.
func TestTopicQueueNoCollision(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.must(req{method: "PUT", path: "/v2/queues/same", body: `{"kind": "queue"}`}, http.StatusCreated)
	e.must(req{method: "PUT", path: "/v2/topics/same", body: `{"kind": "topic"}`}, http.StatusCreated)
	for _, q := range []string{"a", "z", "zz"} {
		e.must(req{method: "PUT", path: "/v2/queues/" + q}, http.StatusCreated)
	}
	e.must(req{method: "PUT", path: "/v2/topics/a"}, http.StatusCreated)
	e.must(req{method: "POST", path: "/v2/queues/same/messages", body: `{"messages": [{"body": "to the queue"}]}`}, http.StatusCreated)
	e.must(req{method: "POST", path: "/v2/topics/same/messages", body: `{"messages": [{"body": "to the topic"}]}`}, http.StatusCreated)

	meta := func(path string) string {
		var m map[string]any
		e.must(req{method: "GET", path: path}, http.StatusOK).decode(t, &m)
		s, _ := m["kind"].(string)
		return s
	}
	if q, tp := meta("/v2/queues/same"), meta("/v2/topics/same"); q != "queue" || tp != "topic" {
		t.Fatalf("metadata: queue %q, topic %q", q, tp)
	}
	bodies := func(path string) []string {
		var l wire.MessageList
		e.must(req{method: "GET", path: path + "/messages?echo=true"}, http.StatusOK).decode(t, &l)
		var out []string
		for _, m := range l.Messages {
			var s string
			_ = json.Unmarshal(m.Body, &s)
			out = append(out, s)
			if !strings.HasPrefix(m.Href, path+"/messages/") {
				t.Fatalf("href %q not under %s", m.Href, path)
			}
		}
		return out
	}
	if got := bodies("/v2/queues/same"); len(got) != 1 || got[0] != "to the queue" {
		t.Fatalf("queue messages %q", got)
	}
	if got := bodies("/v2/topics/same"); len(got) != 1 || got[0] != "to the topic" {
		t.Fatalf("topic messages %q", got)
	}

	names := func(path, key string) []string {
		var l map[string]json.RawMessage
		e.must(req{method: "GET", path: path}, http.StatusOK).decode(t, &l)
		var items []wire.QueueItem
		if err := json.Unmarshal(l[key], &items); err != nil {
			t.Fatalf("%s: %s", path, l[key])
		}
		var out []string
		for _, it := range items {
			out = append(out, it.Name)
		}
		return out
	}
	for _, c := range []struct {
		path, key, want string
	}{
		{"/v2/queues", "queues", "a same z zz"},
		{"/v2/queues?limit=20&detailed=true", "queues", "a same z zz"},
		{"/v2/queues?marker=z", "queues", "zz"},
		{"/v2/queues?marker=zz", "queues", ""},
		{"/v2/queues?name=a", "queues", "a same"}, // the scan, past the queues
		{"/v2/queues?kind=queue", "queues", "same"},
		{"/v2/topics", "topics", "a same"},
		{"/v2/topics?detailed=true&kind=topic", "topics", "same"},
		{"/v2/topics?marker=a", "topics", "same"},
		{"/v2/topics?name=sa", "topics", "same"},
	} {
		if got := strings.Join(names(c.path, c.key), " "); got != c.want {
			t.Errorf("GET %s: %q, want %q", c.path, got, c.want)
		}
	}
	var counted wire.QueueList
	e.must(req{method: "GET", path: "/v2/queues?with_count=true"}, http.StatusOK).decode(t, &counted)
	if counted.Count != 4 {
		t.Fatalf("with_count %d, want 4 queues", counted.Count)
	}

	createTopicSub := func(path string) {
		e.must(req{method: "POST", path: path + "/subscriptions", body: `{"subscriber": "http://127.0.0.1:9/` + path + `"}`}, http.StatusCreated)
	}
	createTopicSub("/v2/queues/same")
	createTopicSub("/v2/topics/same")
	var subs struct{ Subscriptions []subscriptionView }
	e.must(req{method: "GET", path: "/v2/topics/same/subscriptions"}, http.StatusOK).decode(t, &subs)
	if len(subs.Subscriptions) != 1 || subs.Subscriptions[0].Source != "same" ||
		subs.Subscriptions[0].Subscriber != "http://127.0.0.1:9//v2/topics/same" {
		t.Fatalf("topic subscriptions %+v", subs.Subscriptions)
	}

	e.must(req{method: "DELETE", path: "/v2/topics/same"}, http.StatusNoContent)
	if got := bodies("/v2/queues/same"); len(got) != 1 {
		t.Fatalf("queue messages after the topic's delete: %q", got)
	}
	e.must(req{method: "GET", path: "/v2/queues/same/subscriptions"}, http.StatusOK).decode(t, &subs)
	if len(subs.Subscriptions) != 1 {
		t.Fatalf("queue subscriptions after the topic's delete: %+v", subs.Subscriptions)
	}
	e.must(req{method: "GET", path: "/v2/topics/same/subscriptions"}, http.StatusOK).decode(t, &subs)
	if len(subs.Subscriptions) != 0 {
		t.Fatalf("the deleted topic's subscriptions: %+v", subs.Subscriptions)
	}
}

// TestTopicListPages: the topic listing pages with marker and limit, its
// next links lead through every topic once, and detailed shows a topic's
// reserved defaults.
func TestTopicListPages(t *testing.T) {
	e := newEnv(t, envOpts{})
	for _, n := range []string{"t1", "t2", "t3"} {
		e.must(req{method: "PUT", path: "/v2/topics/" + n, body: `{"n": "` + n + `"}`}, http.StatusCreated)
	}
	e.must(req{method: "PUT", path: "/v2/queues/t0"}, http.StatusCreated)
	var seen []string
	path := "/v2/topics?limit=2&detailed=true"
	for i := 0; i < 5; i++ {
		var l wire.TopicList
		e.must(req{method: "GET", path: path}, http.StatusOK).decode(t, &l)
		if len(l.Topics) == 0 {
			if len(l.Links) != 0 {
				t.Fatalf("empty page with links %+v", l.Links)
			}
			break
		}
		for _, it := range l.Topics {
			seen = append(seen, it.Name)
			if it.Href != "/v2/topics/"+it.Name {
				t.Fatalf("href %q", it.Href)
			}
			if _, ok := it.Metadata.Get(wire.MetaDefaultMessageTTL); !ok {
				t.Fatalf("detailed metadata %s", mustJSON(t, it.Metadata))
			}
			if _, ok := it.Metadata.Get(wire.MetaDeadLetterQueue); ok {
				t.Fatalf("a topic shows a queue's reserved key: %s", mustJSON(t, it.Metadata))
			}
		}
		path = l.Links[0].Href
	}
	if got := strings.Join(seen, " "); got != "t1 t2 t3" {
		t.Fatalf("pages listed %q", got)
	}
	r := e.must(req{method: "GET", path: "/v2/topics?limit=21"}, http.StatusBadRequest)
	assertZaqarError(t, r)
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestTopicMessages: post (201 with resources under the topic), list, get
// and delete one, by ids, stats and purge.
func TestTopicMessages(t *testing.T) {
	e := newEnv(t, envOpts{})
	var posted wire.PostResult
	r := e.must(req{method: "POST", path: "/v2/topics/tm/messages",
		body: `{"messages": [{"body": {"n": 1}, "ttl": 300}, {"body": "two"}]}`}, http.StatusCreated)
	r.decode(t, &posted)
	if len(posted.Resources) != 2 || !strings.HasPrefix(posted.Resources[0], "/v2/topics/tm/messages/") ||
		!strings.HasPrefix(r.header.Get("Location"), "/v2/topics/tm/messages?ids=") {
		t.Fatalf("post %s, Location %q", r.body, r.header.Get("Location"))
	}
	var m wire.Message
	e.must(req{method: "GET", path: posted.Resources[0]}, http.StatusOK).decode(t, &m)
	if m.Href != posted.Resources[0] || m.TTL != 300 {
		t.Fatalf("message %+v", m)
	}
	var st wire.Stats
	e.must(req{method: "GET", path: "/v2/topics/tm/stats"}, http.StatusOK).decode(t, &st)
	if st.Messages.Total != 2 || st.Messages.Oldest == nil || st.Messages.Oldest.Href != posted.Resources[0] {
		t.Fatalf("stats %+v", st.Messages)
	}
	e.must(req{method: "DELETE", path: posted.Resources[0]}, http.StatusNoContent)
	r = e.must(req{method: "GET", path: posted.Resources[0]}, http.StatusNotFound)
	assertZaqarError(t, r)
	id := posted.Resources[1][strings.LastIndexByte(posted.Resources[1], '/')+1:]
	var byID wire.Messages
	e.must(req{method: "GET", path: "/v2/topics/tm/messages?ids=" + id}, http.StatusOK).decode(t, &byID)
	if len(byID.Messages) != 1 {
		t.Fatalf("by id %+v", byID)
	}
	e.must(req{method: "POST", path: "/v2/topics/tm/purge", body: `{"resource_types": ["messages"]}`}, http.StatusNoContent)
	e.must(req{method: "GET", path: "/v2/topics/tm/stats"}, http.StatusOK).decode(t, &st)
	if st.Messages.Total != 0 {
		t.Fatalf("stats after purge %+v", st.Messages)
	}
	// A topic has no claims.
	e.must(req{method: "POST", path: "/v2/topics/tm/claims", body: `{}`}, http.StatusNotFound)
	e.must(req{method: "POST", path: "/v2/topics/tm/messages", body: `{"messages": [{"body": 1, "ttl": 1}]}`}, http.StatusBadRequest)
}

// TestTopicDeliversToSubscribers: a message posted to a topic reaches
// every subscriber of the topic, named by the topic's name, and no
// subscriber of the queue of the same name.
func TestTopicDeliversToSubscribers(t *testing.T) {
	var mu sync.Mutex
	got := map[string][]map[string]any{}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, _ := io.ReadAll(r.Body)
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Errorf("webhook body %q: %v", data, err)
		}
		mu.Lock()
		got[r.URL.Path] = append(got[r.URL.Path], m)
		mu.Unlock()
	}))
	defer hook.Close()
	e := newDeliveryEnv(t)
	for _, s := range []struct{ path, hook string }{
		{"/v2/topics/fan/subscriptions", "/one"},
		{"/v2/topics/fan/subscriptions", "/two"},
		{"/v2/queues/fan/subscriptions", "/queue"},
	} {
		e.must(req{method: "POST", path: s.path, body: `{"subscriber": "` + hook.URL + s.hook + `"}`}, http.StatusCreated)
	}
	count := func(p string) int {
		mu.Lock()
		defer mu.Unlock()
		return len(got[p])
	}
	e.must(req{method: "POST", path: "/v2/topics/fan/messages", body: `{"messages": [{"body": "news", "ttl": 300}]}`}, http.StatusCreated)
	drivertest.Eventually(t, "the topic's message at both subscribers", func() bool { return count("/one") >= 1 && count("/two") >= 1 })
	e.must(req{method: "POST", path: "/v2/queues/fan/messages", body: `{"messages": [{"body": "queued"}]}`}, http.StatusCreated)
	drivertest.Eventually(t, "the queue's message at its subscriber", func() bool { return count("/queue") >= 1 })
	mu.Lock()
	defer mu.Unlock()
	for _, p := range []string{"/one", "/two"} {
		if n := got[p][0]; n["queue_name"] != "fan" || n["body"] != "news" || n["Message_Type"] != "Notification" {
			t.Fatalf("%s got %v", p, got[p])
		}
	}
	if q := got["/queue"]; len(q) != 1 || q[0]["body"] != "queued" {
		t.Fatalf("the queue's subscriber got %v", q)
	}
}

// TestTopicConfirmationNotice: a topic subscription's notice signs the
// topic's confirm route, which the signed URL then opens.
func TestTopicConfirmationNotice(t *testing.T) {
	nt := &noticeTaker{}
	e := newEnv(t, envOpts{single: true, server: func(o *Options) {
		o.Notify, o.RequireConfirmation = nt, true
	}})
	var created struct {
		ID string `json:"subscription_id"`
	}
	e.must(req{method: "POST", path: "/v2/topics/ct/subscriptions", body: `{"subscriber": "http://127.0.0.1:9/c"}`}, http.StatusCreated).decode(t, &created)
	n := nt.last(t, 1)
	path := "/v2/topics/ct/subscriptions/" + created.ID + "/confirm"
	if n.URLPaths != path || n.Message != "You have chosen to subscribe to the topic: ct" {
		t.Fatalf("notice %+v", n)
	}
	signed := map[string]string{"URL-Signature": n.URLSignature, "URL-Methods": n.URLMethods, "URL-Paths": n.URLPaths,
		"URL-Expires": n.URLExpires, "X-Project-ID": n.ProjectID}
	e.must(req{method: "PUT", path: path, body: `{"confirmed": true}`, header: signed}, http.StatusNoContent)
	var got subscriptionView
	e.must(req{method: "GET", path: "/v2/topics/ct/subscriptions/" + created.ID}, http.StatusOK).decode(t, &got)
	if !got.Confirmed || got.Source != "ct" {
		t.Fatalf("subscription %+v", got)
	}
}

// TestForwardTopic: in cluster mode a topic's requests go to the owner of
// the queue the topic is stored as, not to the owner of the queue of the
// same name.
func TestForwardTopic(t *testing.T) {
	a, fa := clusterNode(t, "node-a", nil)
	b, _ := clusterNode(t, "node-b", nil)
	fa.mu.Lock()
	fa.owner[topics.Ref(project, "ft").Name] = b.url
	fa.mu.Unlock()
	a.must(req{method: "POST", path: "/v2/topics/ft/messages", body: `{"messages": [{"body": 1}]}`}, http.StatusCreated)
	a.must(req{method: "POST", path: "/v2/queues/ft/messages", body: `{"messages": [{"body": 2}]}`}, http.StatusCreated)
	for _, c := range []struct {
		e    *env
		path string
		want int
	}{{b, "/v2/topics/ft/stats", 1}, {a, "/v2/topics/ft/stats", 1}, {b, "/v2/queues/ft/stats", 0}} {
		var st wire.Stats
		c.e.must(req{method: "GET", path: c.path}, http.StatusOK).decode(t, &st)
		if st.Messages.Total != c.want {
			t.Fatalf("%s: %d messages, want %d", c.path, st.Messages.Total, c.want)
		}
	}
	if n := forwarded(a.srv, "ok"); n == 0 {
		t.Fatal("nothing forwarded")
	}
}

// TestTopicNamesApartFromQueues pins what package topics relies on from
// the queue-name rule: no queue name is a topic's stored name, and every
// byte a queue name may hold sorts before the topic prefix, so that each
// kind is one run of the engine's listing.
func TestTopicNamesApartFromQueues(t *testing.T) {
	if validQueueName(topics.Ref(project, "x").Name, 1000) {
		t.Fatalf("%q is a valid queue name", topics.Ref(project, "x").Name)
	}
	for c := 0; c < 256; c++ {
		if validQueueName("a"+string(rune(c)), 64) && byte(c) >= topics.Prefix[0] {
			t.Errorf("queue names may hold %q, which sorts after the topic prefix %q", rune(c), topics.Prefix)
		}
	}
}

// TestTopicAccessLog: a topic route's access log line names the topic as
// one, not as a queue.
func TestTopicAccessLog(t *testing.T) {
	var buf syncBuffer
	e := newEnv(t, envOpts{server: func(o *Options) { o.Logger = zerolog.New(&buf) }})
	e.must(req{method: "GET", path: "/v2/topics/logged/stats"}, http.StatusOK)
	line := buf.String()
	if !strings.Contains(line, `"topic":"logged"`) || strings.Contains(line, `"queue":`) ||
		!strings.Contains(line, `"route":"/v2/topics/{topic_name}/stats"`) {
		t.Fatalf("log line %s", line)
	}
}
