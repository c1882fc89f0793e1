package server

import (
	"bytes"
	_ "embed"
	"net/http"
)

// route is one row of the route table.
type route struct {
	method string
	path   string // gorilla/mux template; also the metrics and log label
	h      func(*Server, *request) (reply, error)
	// fail is what a 503 says could not be done, in Zaqar's words.
	fail string
}

// routes is every route the server answers. Unknown paths are 404 and
// known paths with another method 405, both with Falcon's bodies.
var routes = []route{
	{"GET", "/", (*Server).getVersions, ""},
	{"GET", "/v2/", (*Server).getHome, ""},
	{"GET", "/v2/ping", (*Server).getPing, ""},
	{"HEAD", "/v2/ping", (*Server).headPing, ""},
	{"GET", "/v2/health", (*Server).getHealth, "Health status could not be read."},
	{"GET", "/healthz", (*Server).getHealthz, ""},
	{"HEAD", "/healthz", (*Server).getHealthz, ""},
	{"GET", "/readyz", (*Server).getReadyz, ""},
	{"HEAD", "/readyz", (*Server).getReadyz, ""},

	{"GET", "/v2/queues", (*Server).listQueues, "Queues could not be listed."},
	{"PUT", "/v2/queues/{queue_name}", (*Server).createQueue, "Queue could not be created."},
	{"GET", "/v2/queues/{queue_name}", (*Server).getQueue, "Queue metadata could not be retrieved."},
	{"PATCH", "/v2/queues/{queue_name}", (*Server).patchQueue, "Queue could not be updated."},
	{"DELETE", "/v2/queues/{queue_name}", (*Server).deleteQueue, "Queue could not be deleted."},
	{"GET", "/v2/queues/{queue_name}/stats", (*Server).queueStats, "Queue stats could not be read."},
	{"POST", "/v2/queues/{queue_name}/purge", (*Server).purgeQueue, "Queue could not be purged."},
	{"POST", "/v2/queues/{queue_name}/share", (*Server).shareQueue, "Pre-signed URL could not be created."},

	{"POST", "/v2/queues/{queue_name}/messages", (*Server).postMessages, "Messages could not be enqueued."},
	{"GET", "/v2/queues/{queue_name}/messages", (*Server).getMessages, "Messages could not be listed."},
	{"DELETE", "/v2/queues/{queue_name}/messages", (*Server).deleteMessages, "Messages could not be deleted."},
	{"GET", "/v2/queues/{queue_name}/messages/{message_id}", (*Server).getMessage, "Message could not be retrieved."},
	{"DELETE", "/v2/queues/{queue_name}/messages/{message_id}", (*Server).deleteMessage, "Message could not be deleted."},

	{"POST", "/v2/queues/{queue_name}/claims", (*Server).createClaim, "Claim could not be created."},
	{"GET", "/v2/queues/{queue_name}/claims/{claim_id}", (*Server).getClaim, "Claim could not be queried."},
	{"PATCH", "/v2/queues/{queue_name}/claims/{claim_id}", (*Server).updateClaim, "Claim could not be updated."},
	{"DELETE", "/v2/queues/{queue_name}/claims/{claim_id}", (*Server).releaseClaim, "Claim could not be deleted."},

	{"GET", "/v2/queues/{queue_name}/subscriptions", (*Server).listSubscriptions, "Subscriptions could not be listed."},
	{"POST", "/v2/queues/{queue_name}/subscriptions", (*Server).createSubscription, "Subscription could not be created."},
	{"GET", "/v2/queues/{queue_name}/subscriptions/{subscription_id}", (*Server).getSubscription, "Subscription could not be retrieved."},
	{"PATCH", "/v2/queues/{queue_name}/subscriptions/{subscription_id}", (*Server).updateSubscription, ""},
	{"DELETE", "/v2/queues/{queue_name}/subscriptions/{subscription_id}", (*Server).deleteSubscription, "Subscription could not be deleted."},
	{"PUT", "/v2/queues/{queue_name}/subscriptions/{subscription_id}/confirm", (*Server).confirmSubscription, ""},

	// Topics (topics.go): a {topic_name} route names the topic, so the
	// queue handlers serve it where Zaqar's are shared too.
	{"GET", "/v2/topics", (*Server).listTopics, "Topics could not be listed."},
	{"PUT", "/v2/topics/{topic_name}", (*Server).createQueue, "Topic could not be created."},
	{"GET", "/v2/topics/{topic_name}", (*Server).getTopic, "Topic metadata could not be retrieved."},
	{"PATCH", "/v2/topics/{topic_name}", (*Server).patchQueue, "Topic could not be updated."},
	{"DELETE", "/v2/topics/{topic_name}", (*Server).deleteQueue, "Topic could not be deleted."},
	{"GET", "/v2/topics/{topic_name}/stats", (*Server).queueStats, "Topic stats could not be read."},
	{"POST", "/v2/topics/{topic_name}/purge", (*Server).purgeQueue, "Topic could not be purged."},

	{"POST", "/v2/topics/{topic_name}/messages", (*Server).postMessages, "Messages could not be enqueued."},
	{"GET", "/v2/topics/{topic_name}/messages", (*Server).getMessages, "Messages could not be listed."},
	{"DELETE", "/v2/topics/{topic_name}/messages", (*Server).deleteMessages, "Messages could not be deleted."},
	{"GET", "/v2/topics/{topic_name}/messages/{message_id}", (*Server).getMessage, "Message could not be retrieved."},
	{"DELETE", "/v2/topics/{topic_name}/messages/{message_id}", (*Server).deleteMessage, "Message could not be deleted."},

	{"GET", "/v2/topics/{topic_name}/subscriptions", (*Server).listSubscriptions, "Subscriptions could not be listed."},
	{"POST", "/v2/topics/{topic_name}/subscriptions", (*Server).createSubscription, "Subscription could not be created."},
	{"GET", "/v2/topics/{topic_name}/subscriptions/{subscription_id}", (*Server).getSubscription, "Subscription could not be retrieved."},
	{"PATCH", "/v2/topics/{topic_name}/subscriptions/{subscription_id}", (*Server).updateSubscription, ""},
	{"DELETE", "/v2/topics/{topic_name}/subscriptions/{subscription_id}", (*Server).deleteSubscription, "Subscription could not be deleted."},
	{"PUT", "/v2/topics/{topic_name}/subscriptions/{subscription_id}/confirm", (*Server).confirmSubscription, ""},
}

// metricsRoute serves the Prometheus registry: on the admin listener, on a
// listener of its own (MetricsHandler), and on the public one only with
// Options.PublicMetrics.
var metricsRoute = route{"GET", metricsPath, (*Server).getMetrics, ""}

// versionsDoc is GET / of Zaqar 15, with v1 and v1.1 still listed as
// DEPRECATED (they are not served, as in a default Zaqar).
var versionsDoc = []byte(`{"versions": [` +
	`{"id": "1", "status": "DEPRECATED", "updated": "2014-9-11T17:47:05Z", "media-types": [{"base": "application/json", "type": "application/vnd.openstack.messaging-v1+json"}], "links": [{"href": "/v1/", "rel": "self"}]}, ` +
	`{"id": "1.1", "status": "DEPRECATED", "updated": "2016-7-29T02:22:47Z", "media-types": [{"base": "application/json", "type": "application/vnd.openstack.messaging-v1_1+json"}], "links": [{"href": "/v1.1/", "rel": "self"}]}, ` +
	`{"id": "2", "status": "CURRENT", "updated": "2014-9-24T04:06:47Z", "media-types": [{"base": "application/json", "type": "application/vnd.openstack.messaging-v2+json"}], "links": [{"href": "/v2/", "rel": "self"}]}]}`)

// homeDoc is Zaqar 15's json-home document for the public v2 API.
//
//go:embed homedoc.json
var homeDoc []byte

func (s *Server) getVersions(rq *request) (reply, error) {
	return reply{status: http.StatusMultipleChoices, raw: versionsDoc}, nil
}

func (s *Server) getHome(rq *request) (reply, error) {
	return reply{
		raw:         bytes.TrimSpace(homeDoc),
		contentType: "application/json-home",
		header:      map[string]string{"Cache-Control": "max-age=86400"},
	}, nil
}
