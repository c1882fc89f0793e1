package server

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/cistern-mq/cistern/index"
	"github.com/cistern-mq/cistern/notify"
	"github.com/cistern-mq/cistern/server/wire"
)

// fieldKind is the JSON type Zaqar's request schema gives a body field.
type fieldKind byte

const (
	kString fieldKind = 's'
	kInt    fieldKind = 'i'
	kBool   fieldKind = 'b'
	kObject fieldKind = 'o'
	kArray  fieldKind = 'a'
)

// wsField is one body field of an action's schema.
type wsField struct {
	name     string
	kind     fieldKind
	required bool
}

// wsAction is one action of the websocket transport: its schema, the HTTP
// request that serves it, and how that answer reads on the socket.
type wsAction struct {
	fields []wsField
	// http builds the HTTP request of the action from the frame's body.
	http func(b wsBody) (method, path string, query url.Values, body []byte)
	// answer turns the HTTP answer into the socket's body (status may
	// change too); nil passes the decoded HTTP body through.
	answer func(b wsBody, status int, h http.Header, data []byte) (int, any)
}

var (
	fQueue     = wsField{"queue_name", kString, true}
	fMessageID = wsField{"message_id", kString, true}
	fClaimID   = wsField{"claim_id", kString, true}
	fSubID     = wsField{"subscription_id", kString, true}
)

// wsActions is every action the transport answers, as Zaqar's v2 request
// schema lists them (authenticate is handled by the connection).
var wsActions = map[string]wsAction{
	"queue_list": {
		fields: []wsField{{"marker", kString, false}, {"limit", kInt, false}, {"detailed", kBool, false}},
		http: func(b wsBody) (string, string, url.Values, []byte) {
			return "GET", "/v2/queues", b.query("marker", "limit", "detailed"), nil
		},
		answer: func(b wsBody, st int, h http.Header, data []byte) (int, any) {
			return http.StatusOK, map[string]any{"queues": member(data, "queues")}
		},
	},
	"queue_create": {
		fields: []wsField{fQueue, {"metadata", kObject, false}},
		http: func(b wsBody) (string, string, url.Values, []byte) {
			meta := b.raw("metadata")
			if meta == nil {
				meta = []byte("{}")
			}
			return "PUT", b.queuePath(), nil, meta
		},
		answer: func(b wsBody, st int, h http.Header, data []byte) (int, any) {
			return st, fmt.Sprintf("Queue %s created.", b.str("queue_name"))
		},
	},
	"queue_get": {
		fields: []wsField{fQueue},
		http: func(b wsBody) (string, string, url.Values, []byte) {
			return "GET", b.queuePath(), nil, nil
		},
	},
	"queue_delete": {
		fields: []wsField{fQueue},
		http: func(b wsBody) (string, string, url.Values, []byte) {
			return "DELETE", b.queuePath(), nil, nil
		},
		answer: func(b wsBody, st int, h http.Header, data []byte) (int, any) {
			return st, fmt.Sprintf("Queue %s removed.", b.str("queue_name"))
		},
	},
	"queue_get_stats": {
		fields: []wsField{fQueue},
		http: func(b wsBody) (string, string, url.Values, []byte) {
			return "GET", b.queuePath() + "/stats", nil, nil
		},
	},
	"queue_purge": {
		fields: []wsField{fQueue, {"resource_types", kArray, false}},
		http: func(b wsBody) (string, string, url.Values, []byte) {
			// Zaqar's websocket purge defaults to both kinds; the HTTP
			// route requires the key.
			rt := b.raw("resource_types")
			if rt == nil {
				rt = json.RawMessage(`["messages","subscriptions"]`)
			}
			body, _ := json.Marshal(map[string]json.RawMessage{"resource_types": rt})
			return "POST", b.queuePath() + "/purge", nil, body
		},
		answer: func(b wsBody, st int, h http.Header, data []byte) (int, any) {
			return st, map[string]any{}
		},
	},

	"message_list": {
		fields: []wsField{fQueue, {"marker", kString, false}, {"limit", kInt, false},
			{"echo", kBool, false}, {"include_claimed", kBool, false}},
		http: func(b wsBody) (string, string, url.Values, []byte) {
			return "GET", b.queuePath() + "/messages", b.query("marker", "limit", "echo", "include_claimed"), nil
		},
		answer: func(b wsBody, st int, h http.Header, data []byte) (int, any) {
			return http.StatusOK, map[string]any{"messages": wsMessages(data)}
		},
	},
	"message_get": {
		fields: []wsField{fQueue, fMessageID},
		http: func(b wsBody) (string, string, url.Values, []byte) {
			return "GET", b.queuePath() + "/messages/" + b.str("message_id"), nil, nil
		},
		answer: func(b wsBody, st int, h http.Header, data []byte) (int, any) {
			var m wire.Message
			_ = json.Unmarshal(data, &m)
			return st, map[string]any{"messages": wsMessage(m)}
		},
	},
	"message_get_many": {
		fields: []wsField{fQueue, {"message_ids", kArray, true}},
		http: func(b wsBody) (string, string, url.Values, []byte) {
			return "GET", b.queuePath() + "/messages", url.Values{"ids": {b.list("message_ids")}}, nil
		},
		answer: func(b wsBody, st int, h http.Header, data []byte) (int, any) {
			return st, map[string]any{"messages": wsMessages(data)}
		},
	},
	"message_post": {
		fields: []wsField{fQueue, {"messages", kArray, true}},
		http: func(b wsBody) (string, string, url.Values, []byte) {
			body, _ := json.Marshal(map[string]json.RawMessage{"messages": b.raw("messages")})
			return "POST", b.queuePath() + "/messages", nil, body
		},
		answer: func(b wsBody, st int, h http.Header, data []byte) (int, any) {
			var res wire.PostResult
			_ = json.Unmarshal(data, &res)
			ids := make([]string, len(res.Resources))
			for i, r := range res.Resources {
				ids[i] = r[strings.LastIndexByte(r, '/')+1:]
			}
			return st, map[string]any{"message_ids": ids}
		},
	},
	"message_delete": {
		fields: []wsField{fQueue, fMessageID, {"claim_id", kString, false}},
		http: func(b wsBody) (string, string, url.Values, []byte) {
			return "DELETE", b.queuePath() + "/messages/" + b.str("message_id"), b.query("claim_id"), nil
		},
		answer: func(b wsBody, st int, h http.Header, data []byte) (int, any) {
			return st, map[string]any{}
		},
	},
	"message_delete_many": {
		fields: []wsField{fQueue, {"message_ids", kArray, false}, {"claim_ids", kArray, false}, {"pop", kInt, false}},
		http: func(b wsBody) (string, string, url.Values, []byte) {
			q := b.query("pop")
			if b.raw("message_ids") != nil {
				q.Set("ids", b.list("message_ids"))
			}
			if b.raw("claim_ids") != nil {
				q.Set("claim_ids", b.list("claim_ids"))
			}
			return "DELETE", b.queuePath() + "/messages", q, nil
		},
		answer: func(b wsBody, st int, h http.Header, data []byte) (int, any) {
			if b.raw("pop") != nil && b.raw("message_ids") == nil {
				return http.StatusOK, map[string]any{"messages": wsMessages(data)}
			}
			return st, map[string]any{}
		},
	},

	"claim_create": {
		fields: []wsField{fQueue, {"limit", kInt, false}, {"ttl", kInt, false}, {"grace", kInt, false}},
		http: func(b wsBody) (string, string, url.Values, []byte) {
			return "POST", b.queuePath() + "/claims", b.query("limit"), b.object("ttl", "grace")
		},
		answer: func(b wsBody, st int, h http.Header, data []byte) (int, any) {
			if st == http.StatusNoContent {
				// Cistern makes no claim when nothing is claimable.
				return st, map[string]any{"claim_id": nil}
			}
			loc := headerAnyCase(h, "Location")
			return st, map[string]any{"claim_id": loc[strings.LastIndexByte(loc, '/')+1:], "messages": wsMessages(data)}
		},
	},
	"claim_get": {
		fields: []wsField{fQueue, fClaimID},
		http: func(b wsBody) (string, string, url.Values, []byte) {
			return "GET", b.queuePath() + "/claims/" + b.str("claim_id"), nil, nil
		},
		answer: func(b wsBody, st int, h http.Header, data []byte) (int, any) {
			var c wire.Claim
			_ = json.Unmarshal(data, &c)
			return st, map[string]any{"age": c.Age, "ttl": c.TTL, "messages": wsMessageList(c.Messages)}
		},
	},
	"claim_update": {
		fields: []wsField{fQueue, fClaimID, {"ttl", kInt, false}, {"grace", kInt, false}},
		http: func(b wsBody) (string, string, url.Values, []byte) {
			return "PATCH", b.queuePath() + "/claims/" + b.str("claim_id"), nil, b.object("ttl", "grace")
		},
		answer: func(b wsBody, st int, h http.Header, data []byte) (int, any) {
			return st, fmt.Sprintf("Claim %s updated.", b.str("claim_id"))
		},
	},
	"claim_delete": {
		fields: []wsField{fQueue, fClaimID},
		http: func(b wsBody) (string, string, url.Values, []byte) {
			return "DELETE", b.queuePath() + "/claims/" + b.str("claim_id"), nil, nil
		},
		answer: func(b wsBody, st int, h http.Header, data []byte) (int, any) {
			return st, fmt.Sprintf("Claim %s deleted.", b.str("claim_id"))
		},
	},

	"subscription_list": {
		fields: []wsField{fQueue, {"marker", kString, false}, {"limit", kInt, false}},
		http: func(b wsBody) (string, string, url.Values, []byte) {
			return "GET", b.queuePath() + "/subscriptions", b.query("marker", "limit"), nil
		},
		answer: func(b wsBody, st int, h http.Header, data []byte) (int, any) {
			return st, map[string]any{"subscriptions": member(data, "subscriptions")}
		},
	},
	"subscription_create": {
		fields: []wsField{fQueue, {"subscriber", kString, false}, {"ttl", kInt, false}, {"options", kObject, false}},
		http: func(b wsBody) (string, string, url.Values, []byte) {
			return "POST", b.queuePath() + "/subscriptions", nil, b.object("subscriber", "ttl", "options")
		},
		answer: func(b wsBody, st int, h http.Header, data []byte) (int, any) {
			var res struct {
				ID string `json:"subscription_id"`
			}
			_ = json.Unmarshal(data, &res)
			return st, map[string]any{"subscription_id": res.ID,
				"message": fmt.Sprintf("Subscription %s created.", b.str("queue_name"))}
		},
	},
	"subscription_get": {
		fields: []wsField{fQueue, fSubID},
		http: func(b wsBody) (string, string, url.Values, []byte) {
			return "GET", b.queuePath() + "/subscriptions/" + b.str("subscription_id"), nil, nil
		},
	},
	"subscription_delete": {
		fields: []wsField{fQueue, fSubID},
		http: func(b wsBody) (string, string, url.Values, []byte) {
			return "DELETE", b.queuePath() + "/subscriptions/" + b.str("subscription_id"), nil, nil
		},
		answer: func(b wsBody, st int, h http.Header, data []byte) (int, any) {
			return st, fmt.Sprintf("Subscription %s removed.", b.str("subscription_id"))
		},
	},
}

// wsBody is a frame's body, checked against its action's schema.
type wsBody map[string]json.RawMessage

func (b wsBody) raw(k string) json.RawMessage {
	v, ok := b[k]
	if !ok || wire.Kind(v) == 'n' {
		return nil
	}
	return v
}

func (b wsBody) str(k string) string {
	s, _ := wire.String(b[k])
	return s
}

// queuePath is the queue's path; the schema check refused names with a
// slash, which would select another route.
func (b wsBody) queuePath() string { return "/v2/queues/" + b.str("queue_name") }

// query is the fields named that the body has, as query parameters.
func (b wsBody) query(names ...string) url.Values {
	q := url.Values{}
	for _, n := range names {
		raw := b.raw(n)
		if raw == nil {
			continue
		}
		if s, ok := wire.String(raw); ok {
			q.Set(n, s)
		} else {
			q.Set(n, string(raw)) // an integer or a boolean, as JSON writes it
		}
	}
	return q
}

// list joins an array of strings for an ids= parameter.
func (b wsBody) list(k string) string {
	var ids []string
	_ = json.Unmarshal(b[k], &ids)
	return strings.Join(ids, ",")
}

// object is the fields named that the body has, as a JSON object.
func (b wsBody) object(names ...string) []byte {
	out := map[string]json.RawMessage{}
	for _, n := range names {
		if v, ok := b[n]; ok {
			out[n] = v
		}
	}
	data, _ := json.Marshal(out)
	return data
}

// valid checks b against fields, as Zaqar's jsonschema does: required
// fields present, every known field of its type. A path field must not
// hold a slash, which would select another route.
func (b wsBody) valid(fields []wsField) bool {
	for _, f := range fields {
		raw, ok := b[f.name]
		if !ok {
			if f.required {
				return false
			}
			continue
		}
		var good bool
		switch f.kind {
		case kString:
			s, isStr := wire.String(raw)
			good = isStr && !(f.required && strings.ContainsAny(s, "/?#"))
		case kInt:
			_, good = wire.Int(raw)
		case kBool:
			good = wire.Kind(raw) == 't' || wire.Kind(raw) == 'f'
		case kObject:
			good = wire.Kind(raw) == '{'
		case kArray:
			var items []string
			good = wire.Kind(raw) == '[' && (f.name == "messages" || json.Unmarshal(raw, &items) == nil)
		}
		if !good {
			return false
		}
	}
	return true
}

// httpHeaders reports whether every header could be sent over HTTP: a
// name of token characters, a value without control characters. The
// frame's headers become an HTTP request's, which a forward to another
// node writes out.
func httpHeaders(h map[string]string) bool {
	for k, v := range h {
		if k == "" {
			return false
		}
		for i := 0; i < len(k); i++ {
			if k[i] <= ' ' || k[i] >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", k[i]) >= 0 {
				return false
			}
		}
		for i := 0; i < len(v); i++ {
			if (v[i] < ' ' && v[i] != '\t') || v[i] == 0x7f {
				return false
			}
		}
	}
	return true
}

// member is one member of a JSON object answer, [] when absent.
func member(data []byte, k string) json.RawMessage {
	var obj map[string]json.RawMessage
	_ = json.Unmarshal(data, &obj)
	if v, ok := obj[k]; ok && wire.Kind(v) == '[' {
		return v
	}
	return json.RawMessage("[]")
}

// wsMsg is a message on the socket: Zaqar's format_message, whose claim_id
// replaces the HTTP href.
type wsMsg struct {
	ID      string          `json:"id"`
	ClaimID *string         `json:"claim_id"`
	TTL     int64           `json:"ttl"`
	Age     int64           `json:"age"`
	Body    json.RawMessage `json:"body"`
}

func wsMessage(m wire.Message) wsMsg {
	out := wsMsg{ID: m.ID, TTL: m.TTL, Age: m.Age, Body: m.Body}
	if _, q, ok := strings.Cut(m.Href, "?"); ok {
		if v, err := url.ParseQuery(q); err == nil && v.Get("claim_id") != "" {
			cid := v.Get("claim_id")
			out.ClaimID = &cid
		}
	}
	if out.Body == nil {
		out.Body = json.RawMessage("null")
	}
	return out
}

func wsMessageList(ms []wire.Message) []wsMsg {
	out := make([]wsMsg, len(ms))
	for i, m := range ms {
		out[i] = wsMessage(m)
	}
	return out
}

// wsMessages reads the messages of an HTTP answer ({"messages": [...]}).
func wsMessages(data []byte) []wsMsg {
	var ml struct {
		Messages []wire.Message `json:"messages"`
	}
	_ = json.Unmarshal(data, &ml)
	return wsMessageList(ml.Messages)
}

// handle answers one text frame.
func (c *wsConn) handle(ctx context.Context, data []byte) wsResponse {
	top, err := decodeFrame(data)
	if err != nil {
		return wsAnswer(nil, http.StatusBadRequest, map[string]string{"error": err.Error()})
	}
	echo := &wsRequestEcho{Action: top["action"], Body: top["body"], Headers: top["headers"], API: "v2"}
	if echo.Action == nil {
		echo.Action = json.RawMessage("null")
	}
	if echo.Body == nil {
		echo.Body = json.RawMessage("{}")
	}
	if echo.Headers == nil {
		echo.Headers = json.RawMessage("{}")
	}
	schemaFailed := func() wsResponse {
		return wsAnswer(echo, http.StatusBadRequest, map[string]string{"error": "Schema validation failed."})
	}
	action, ok := wire.String(top["action"])
	if !ok {
		return schemaFailed()
	}
	var headers map[string]string
	if h, ok := top["headers"]; ok && json.Unmarshal(h, &headers) != nil {
		return schemaFailed()
	}
	if action == "authenticate" {
		return c.authenticate(ctx, echo, headers)
	}
	act, known := wsActions[action]
	if !known {
		return wsAnswer(echo, http.StatusBadRequest, map[string]string{"error": clip(action, maxLoggedPath) + " is not a valid action"})
	}
	var body wsBody
	if json.Unmarshal(echo.Body, &body) != nil || body == nil || headers == nil || !httpHeaders(headers) ||
		headers["Client-ID"] == "" || headers["X-Project-ID"] == "" || !body.valid(act.fields) {
		return schemaFailed()
	}
	if c.s.keystone != nil && c.token == "" && headers["X-Auth-Token"] == "" && headers["URL-Signature"] == "" {
		return wsAnswer(echo, http.StatusForbidden, map[string]string{"error": "Not authentified."})
	}
	if action == "subscription_create" && body.raw("subscriber") == nil {
		return c.subscribeSocket(ctx, echo, headers, body)
	}
	if id := wsSubID(body.str("subscription_id")); id != "" && (action == "subscription_get" || action == "subscription_delete") {
		if rep, ok := c.socketSubscription(echo, action, id); ok {
			return rep
		}
	}
	method, path, query, reqBody := act.http(body)
	st, h, out := c.roundTrip(ctx, headers, method, path, query, reqBody)
	if st >= 400 {
		if action == "subscription_create" && st == http.StatusConflict {
			return wsAnswer(echo, st, fmt.Sprintf("Subscription %s not created.", body.str("queue_name")))
		}
		var e wire.Error
		_ = json.Unmarshal(out, &e)
		if e.Description == "" {
			// Falcon's bare 404 and 405 have a title only; a 406 has no body.
			e.Description = cmp.Or(e.Title, http.StatusText(st))
		}
		return wsAnswer(echo, st, map[string]string{"error": e.Description, "title": e.Title, "description": e.Description})
	}
	if act.answer == nil {
		var v json.RawMessage = out
		if len(bytes.TrimSpace(out)) == 0 {
			v = json.RawMessage("{}")
		}
		return wsAnswer(echo, st, v)
	}
	st, v := act.answer(body, st, h, out)
	return wsAnswer(echo, st, v)
}

// newRequest is the HTTP request of an action, with the frame's headers
// and the token the socket authenticated with.
func (c *wsConn) newRequest(ctx context.Context, headers map[string]string, method, path string, query url.Values, body []byte) *http.Request {
	r := &http.Request{Method: method, URL: &url.URL{Path: path, RawQuery: query.Encode()},
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: http.Header{},
		Host: c.host, RemoteAddr: c.remote, RequestURI: path}
	for k, v := range headers {
		r.Header.Set(k, v)
	}
	if c.token != "" && r.Header.Get("X-Auth-Token") == "" {
		r.Header.Set("X-Auth-Token", c.token)
	}
	r.Header.Set("Content-Type", "application/json")
	r.Body = http.NoBody
	if body != nil {
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
	}
	return r.WithContext(ctx)
}

// roundTrip serves an action's HTTP request with the public handler.
func (c *wsConn) roundTrip(ctx context.Context, headers map[string]string, method, path string, query url.Values, body []byte) (int, http.Header, []byte) {
	rec := &wsRecorder{header: http.Header{}}
	c.s.handler.ServeHTTP(rec, c.newRequest(ctx, headers, method, path, query, body))
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return rec.status, rec.header, rec.body.Bytes()
}

// authenticate answers the authenticate action. With Keystone the token is
// validated and kept for the socket's later frames; without, it is Zaqar's
// success answer, as a noauth server has nothing to check.
func (c *wsConn) authenticate(ctx context.Context, echo *wsRequestEcho, headers map[string]string) wsResponse {
	if c.s.keystone == nil {
		return wsAnswer(echo, http.StatusOK, map[string]string{"message": "Authentified."})
	}
	token := headers["X-Auth-Token"]
	if token == "" {
		return wsAnswer(echo, http.StatusBadRequest, map[string]string{"error": "Schema validation failed."})
	}
	if _, err := c.s.keystone.Validate(ctx, token); err != nil {
		return wsAnswer(echo, http.StatusUnauthorized, map[string]string{"error": "Authentication failed."})
	}
	c.token = token
	return wsAnswer(echo, http.StatusOK, map[string]string{"message": "Authentified."})
}

// subscribeSocket subscribes the socket itself to a queue. The request
// passes the HTTP API's header rules and authentication (as a POST of a
// subscription), and the ttl and options its subscription rules; the
// queue is created if missing, as Zaqar does, when this node owns it (in
// cluster mode another node's queue is created by its first post).
func (c *wsConn) subscribeSocket(ctx context.Context, echo *wsRequestEcho, headers map[string]string, body wsBody) wsResponse {
	doc := body.object("ttl", "options")
	var sub wsSub
	path := body.queuePath() + "/subscriptions"
	err := c.s.serveDirect(c.newRequest(ctx, headers, "POST", path, nil, doc), path, func(rq *request) error {
		ttl := c.s.lim.DefaultSubscriptionTTL
		if len(doc) > len("{}") {
			d, err := c.s.decodeSubscription(doc, false)
			if err != nil {
				return err
			}
			if d.ttl != nil {
				ttl = *d.ttl
			}
			sub.options = d.options
		}
		if sub.options == nil {
			sub.options = json.RawMessage("{}")
		}
		if _, err := c.s.eng.CreateQueue(rq.ctx(), rq.ref(), nil); err != nil &&
			!errors.Is(err, index.ErrNotOwner) && !errors.Is(err, ErrNoOwner) {
			return err
		}
		sub.id, sub.ref, sub.ttl, sub.created = wsSubID(newUUID()), rq.ref(), ttl, c.s.now()
		return nil
	})
	if err != nil {
		return wsAnswer(echo, err.status, wsErrorBody(err))
	}
	c.subsMu.Lock()
	c.subs[sub.id] = sub
	c.subsMu.Unlock()
	c.s.ws.subscribe(c, sub.ref)
	return wsAnswer(echo, http.StatusCreated, map[string]any{"subscription_id": sub.id,
		"message": fmt.Sprintf("Subscription %s created.", sub.ref.Name)})
}

// socketSubscription answers subscription_get and subscription_delete of
// one of the socket's own subscriptions; ok is false for any other id.
func (c *wsConn) socketSubscription(echo *wsRequestEcho, action string, id wsSubID) (wsResponse, bool) {
	c.subsMu.Lock()
	sub, ok := c.subs[id]
	if ok && action == "subscription_delete" {
		delete(c.subs, id)
	}
	c.subsMu.Unlock()
	if !ok {
		return wsResponse{}, false
	}
	if action == "subscription_delete" {
		c.s.ws.unsubscribe(c, sub.ref)
		return wsAnswer(echo, http.StatusNoContent, fmt.Sprintf("Subscription %s removed.", id)), true
	}
	return wsAnswer(echo, http.StatusOK, subscriptionView{ID: notify.ID(id), Source: sub.ref.Name, Subscriber: c.subscriber(),
		TTL: sub.ttl, Age: ageSeconds(c.s.now(), sub.created), Options: sub.options, Confirmed: true}), true
}

// subscriber names the socket as a subscriber.
func (c *wsConn) subscriber() string { return "ws://" + c.host + "/" + c.id }

// serveDirect runs fn as the handler of a request of route path, after the
// same authentication and header rules as the HTTP routes, for what the
// socket serves itself. The error is the mapped answer.
func (s *Server) serveDirect(r *http.Request, path string, fn func(*request) error) *apiError {
	ctx, cancel := context.WithTimeout(r.Context(), s.reqTimeout)
	defer cancel()
	r = r.WithContext(ctx)
	g := &group{path: path, auth: s.keystone != nil}
	rq := &request{r: r, w: discardWriter{}, id: requestID(r), q: wire.ParseQuery(r.URL.RawQuery),
		vars: map[string]string{"queue_name": strings.TrimPrefix(strings.TrimSuffix(r.URL.Path, "/subscriptions"), "/v2/queues/")}}
	err := s.authenticate(rq, g)
	if err == nil {
		err = s.checkRequest(rq, g)
	}
	if err == nil {
		err = fn(rq)
	}
	if err != nil {
		ae := s.toAPIError(rq, err)
		if ae.status >= 500 {
			s.log.Warn().Err(ae.cause).Str("request_id", rq.id).Str("path", clip(path, maxLoggedPath)).
				Int("status", ae.status).Msg("websocket request failed")
		}
		return ae
	}
	return nil
}

// headerAnyCase reads a header the handler may have written in lower case
// (headercase.go).
func headerAnyCase(h http.Header, name string) string {
	for k, v := range h {
		if len(v) > 0 && strings.EqualFold(k, name) {
			return v[0]
		}
	}
	return ""
}

// itoa64 formats n in decimal.
func itoa64(n int64) string { return strconv.FormatInt(n, 10) }
