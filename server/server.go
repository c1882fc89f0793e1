// Package server serves the OpenStack Zaqar v2 HTTP API over an index.Engine.
//
// Every route is one row of the table in routes.go. A handler takes the
// parsed request and returns (reply, error); one wrapper checks the token
// (with auth_strategy keystone, auth.go) and Zaqar's global header rules
// before the handler runs, writes the reply or maps the error to an HTTP
// answer (errors.go, the only place that does), and records the access log
// line and the metrics. In cluster mode (Options.Cluster), a valid request
// for a queue another node owns is forwarded to that node (forward.go).
// WebsocketHandler serves the same API as Zaqar's websocket transport, each
// action as the HTTP request of the same operation through the public
// handler, so both transports give the same answers (websocket.go).
// docs/api.md lists where Cistern answers differently from Zaqar 15 and
// why; docs/auth.md how Keystone tokens are checked.
package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/cistern-mq/cistern/index"
	"github.com/cistern-mq/cistern/notify"
	"github.com/cistern-mq/cistern/placement"
	"github.com/cistern-mq/cistern/server/wire"
	"github.com/cistern-mq/cistern/topics"
)

// Queues is what the server serves queues from: an index.Engine (one
// store) or a placement.Router (several pools).
type Queues interface {
	CreateQueue(ctx context.Context, ref index.QueueRef, meta json.RawMessage) (bool, error)
	Queue(ctx context.Context, ref index.QueueRef) (index.QueueInfo, bool, error)
	SetMetadata(ctx context.Context, ref index.QueueRef, meta json.RawMessage) error
	DeleteQueue(ctx context.Context, ref index.QueueRef) error
	ListQueues(ctx context.Context, project, marker string, limit int, detailed bool) ([]index.QueueInfo, error)
	Stats(ctx context.Context, ref index.QueueRef) (index.Stats, error)
	Purge(ctx context.Context, ref index.QueueRef) error
	Post(ctx context.Context, ref index.QueueRef, clientID string, msgs []index.NewMessage) ([]string, error)
	List(ctx context.Context, ref index.QueueRef, o index.ListOptions) ([]index.Message, error)
	GetMessages(ctx context.Context, ref index.QueueRef, ids []string) ([]index.Message, error)
	DeleteMessage(ctx context.Context, ref index.QueueRef, id, claimID string) error
	DeleteMessages(ctx context.Context, ref index.QueueRef, ids []string) error
	Pop(ctx context.Context, ref index.QueueRef, n int) ([]index.Message, error)
	Claim(ctx context.Context, ref index.QueueRef, o index.ClaimOptions) (*index.Claim, error)
	GetClaim(ctx context.Context, ref index.QueueRef, id string) (*index.Claim, error)
	RenewClaim(ctx context.Context, ref index.QueueRef, id string, ttl, grace int64) error
	ReleaseClaim(ctx context.Context, ref index.QueueRef, id string) error
	Loaded() int
}

var (
	_ Queues = (*index.Engine)(nil)
	_ Queues = (*placement.Router)(nil)
)

// Options configure a Server.
type Options struct {
	Engine Queues // required
	// Pools, when set, serves Zaqar's admin API (pools, flavors) and
	// migrations on AdminHandler.
	Pools  *placement.Router
	Logger zerolog.Logger
	Limits Limits // zero fields take Zaqar's defaults
	// SharedSecret signs /share URLs and checks URL-Signature headers.
	// Empty: /share answers 400, as Zaqar does without [signed_url]
	// secret_key, and no signed URL verifies.
	SharedSecret string
	// Registry receives the HTTP metrics and is served on /metrics; nil
	// makes a new one (see Server.Registry).
	Registry *prometheus.Registry
	// Clock tells the time for ages and signed-URL expiry; nil is
	// time.Now. Give it the engine's clock in tests.
	Clock func() time.Time
	// Keystone, when set, is auth_strategy keystone: the public handler
	// takes the project from a validated X-Auth-Token and serves the admin
	// API to the admin role (auth.go). AdminHandler is not affected.
	Keystone *Keystone
	// PublicMetrics serves /metrics on Handler too; by default it is
	// served on AdminHandler and MetricsHandler only.
	PublicMetrics bool
	// RequestTimeout is the deadline of every request's context, so that a
	// hung store answers 503 with Retry-After instead of holding the
	// client; 0 is DefaultRequestTimeout, negative none.
	RequestTimeout time.Duration
	// Cluster, when set, is cluster mode: a request for a queue another
	// node owns is forwarded to it (forward.go). Nil: a single node.
	Cluster Cluster
	// NodeID names this node in cluster mode: forwarded requests carry it
	// and the admin /v2/health shows it. Required with Cluster.
	NodeID string
	// Subscriptions keeps the queues' subscriptions; nil: the server has
	// none (subscriptions.go).
	Subscriptions *notify.Store
	// Notify, when set, is told of posts and new subscriptions, so that
	// delivery starts at once instead of at its next scan, and sends the
	// confirmation notices.
	Notify Notifier
	// RequireConfirmation is Zaqar's require_confirmation: new
	// subscriptions get a confirmation notice with a signed URL (it needs
	// SharedSecret), and only confirmed ones are delivered to (give the
	// deliverer the same setting).
	RequireConfirmation bool
	// Mailto accepts mailto: subscribers: the deliverer has an SMTP server
	// (notify.DeliverOptions.Mail). Without it they are refused with 400.
	Mailto bool
}

// Notifier is told what delivery should look at now (notify.Deliverer).
type Notifier interface {
	Posted(ref index.QueueRef)
	// Created is told of a new or changed subscription.
	Created(sub notify.Subscription)
	// Notice sends a confirmation notice to sub's subscriber.
	Notice(sub notify.Subscription, body []byte)
}

// DefaultRequestTimeout is Options.RequestTimeout when zero: longer than a
// healthy store takes for a group commit, far shorter than a client's own
// timeout.
const DefaultRequestTimeout = 10 * time.Second

// Server is the HTTP API. It starts no goroutines of its own (in cluster
// mode, its connections to the other nodes have theirs, which Close ends):
// the caller owns the engine and the listener.
type Server struct {
	eng     Queues
	pools   *placement.Router
	log     zerolog.Logger
	lim     Limits
	secret  []byte
	reg     *prometheus.Registry
	now     func() time.Time
	metrics *metrics
	// metricsHandler serves the registry on /metrics.
	metricsHandler http.Handler
	handler        http.Handler
	adminHandler   http.Handler
	metricsOnly    http.Handler
	keystone       *Keystone // nil: noauth
	reqTimeout     time.Duration
	probes         probes
	cluster        Cluster    // nil: single node
	nodeID         string     // with cluster
	fwd            *forwarder // nil: single node
	subs           *notify.Store
	notify         Notifier // nil: none
	// requireConfirmation: Options.RequireConfirmation.
	requireConfirmation bool
	// subscriberTypes are the subscriber URI schemes accepted.
	subscriberTypes []string
	// ws knows the open websockets and their subscriptions (websocket.go).
	ws *wsHub
}

// New checks o and builds a Server.
func New(o Options) (*Server, error) {
	if o.Engine == nil {
		return nil, errors.New("server: Options.Engine is required")
	}
	if err := o.Limits.Validate(); err != nil {
		return nil, fmt.Errorf("server: limits: %w", err)
	}
	s := &Server{
		eng:   o.Engine,
		pools: o.Pools,
		log:   o.Logger,
		lim:   o.Limits.withDefaults(),
		reg:   o.Registry,
		now:   o.Clock,

		keystone:   o.Keystone,
		reqTimeout: o.RequestTimeout,
		cluster:    o.Cluster,
		nodeID:     o.NodeID,
		subs:       o.Subscriptions,
		notify:     o.Notify,

		requireConfirmation: o.RequireConfirmation,
		subscriberTypes:     subscriberTypes(o.Mailto),
		ws:                  newWSHub(),
	}
	if o.Cluster != nil && o.NodeID == "" {
		return nil, errors.New("server: Options.NodeID is required with Options.Cluster")
	}
	if s.reqTimeout == 0 {
		s.reqTimeout = DefaultRequestTimeout
	}
	if o.SharedSecret != "" {
		s.secret = []byte(o.SharedSecret)
	}
	if s.reg == nil {
		s.reg = prometheus.NewRegistry()
	}
	if s.now == nil {
		s.now = time.Now
	}
	m, err := newMetrics(s.reg)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	if s.cluster != nil {
		if s.fwd, err = newForwarder(s, s.cluster, s.nodeID); err != nil {
			return nil, err
		}
	}
	s.metricsHandler = promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{})
	if _, err := register(s.reg, prometheus.Collector(newPoolUpCollector(s))); err != nil {
		return nil, err
	}
	public := slices.Clone(routes)
	if o.PublicMetrics {
		public = append(public, metricsRoute)
	}
	if s.keystone != nil {
		if err := s.registerKeystoneMetrics(); err != nil {
			return nil, err
		}
		if s.pools != nil {
			public = append(public, adminRoutes...)
		}
	}
	s.handler = zaqarCase(s.router(public, s.keystone != nil, false))
	s.adminHandler = zaqarCase(s.router(append(append(slices.Clone(routes), metricsRoute), adminRoutes...), false, true))
	s.metricsOnly = zaqarCase(s.router([]route{metricsRoute}, false, true))
	return s, nil
}

// Handler returns the HTTP handler of every public route (and /metrics
// with Options.PublicMetrics).
func (s *Server) Handler() http.Handler { return s.handler }

// AdminHandler serves the public routes, /metrics and the admin API
// (pools, flavors, migrations): give it a listener only operators reach.
// Its /v2/health names each pool with its store's error.
func (s *Server) AdminHandler() http.Handler { return s.adminHandler }

// MetricsHandler serves /metrics alone, for a listener of its own.
func (s *Server) MetricsHandler() http.Handler { return s.metricsOnly }

// Close closes the open websockets and drops the connections kept alive
// to other nodes (cluster mode). Call it after the listeners are shut
// down.
func (s *Server) Close() {
	s.CloseWebsockets()
	if s.fwd != nil {
		s.fwd.close()
	}
}

// CloseWebsockets closes the open websockets (http.Server.Shutdown leaves
// them: they are hijacked connections). Call it after the websocket
// listener is shut down and before the engine is closed.
func (s *Server) CloseWebsockets() { s.ws.closeAll() }

// Registry returns the registry /metrics serves.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// reply is what a handler answers. One wrapper writes it.
type reply struct {
	status      int
	body        any    // encoded as JSON when non-nil
	raw         []byte // written as is when body is nil
	contentType string // default application/json
	location    string
	header      map[string]string
	// handler, when set, writes the whole response (for /metrics).
	handler http.Handler
}

// request is one request as handlers see it, after the header rules.
type request struct {
	r       *http.Request
	w       http.ResponseWriter // the server's own, for http.MaxBytesReader
	id      string              // X-Openstack-Request-Id
	rt      *route
	project string
	user    string // Keystone user id; "" without keystone
	client  string // canonical Client-ID
	vars    map[string]string
	q       wire.Query
	detail  bool // operators ask: health shows each pool's error
	// forwardedTo is the owner a request was forwarded to, for the log.
	forwardedTo string
}

func (rq *request) ctx() context.Context { return rq.r.Context() }

// queue is the queue or topic name of the route, as the client wrote it.
func (rq *request) queue() string {
	if t, ok := rq.vars["topic_name"]; ok {
		return t
	}
	return rq.vars["queue_name"]
}

// topic tells a topic route (topics.go) from a queue route.
func (rq *request) topic() bool {
	_, ok := rq.vars["topic_name"]
	return ok
}

// ref is the engine's ref of the route's queue or topic.
func (rq *request) ref() index.QueueRef {
	if rq.topic() {
		return topics.Ref(rq.project, rq.queue())
	}
	return index.QueueRef{Project: rq.project, Name: rq.queue()}
}

// queuePath is "/v2/queues/{q}", or "/v2/topics/{t}" on a topic route.
func (rq *request) queuePath() string {
	if rq.topic() {
		return "/v2/topics/" + rq.queue()
	}
	return "/v2/queues/" + rq.queue()
}

// group is every route of one path template, so that a wrong method is a
// 405 with Allow and a route label, and the header rules still run first.
type group struct {
	path     string
	byMethod map[string]*route
	allow    string
	auth     bool // keystone auth applies (auth.go)
	admin    bool // and it needs the admin role
	detail   bool // served to operators only (admin listener or role)
}

// router serves routes; auth applies keystone auth to them; operators
// tells that only operators reach the listener.
func (s *Server) router(routes []route, auth, operators bool) http.Handler {
	r := mux.NewRouter()
	r.SkipClean(true)
	var groups []*group
	idx := map[string]*group{}
	for i := range routes {
		rt := &routes[i]
		g := idx[rt.path]
		if g == nil {
			g = &group{path: rt.path, byMethod: map[string]*route{}, auth: auth, admin: auth && adminOnly(rt.path)}
			g.detail = operators || g.admin
			idx[rt.path] = g
			groups = append(groups, g)
		}
		g.byMethod[rt.method] = rt
	}
	for _, g := range groups {
		var ms []string
		for _, m := range []string{"DELETE", "GET", "HEAD", "PATCH", "POST", "PUT"} {
			if g.byMethod[m] != nil {
				ms = append(ms, m)
			}
		}
		g.allow = strings.Join(append(ms, "OPTIONS"), ", ")
		r.Handle(g.path, s.serveGroup(g))
	}
	r.NotFoundHandler = http.HandlerFunc(s.notFound)
	return r
}

// statusWriter remembers the status and size of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Flush lets streaming handlers (the metrics exposition) flush.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *Server) serveGroup(g *group) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		s.metrics.inflight.Inc()
		defer s.metrics.inflight.Dec()
		sw := &statusWriter{ResponseWriter: w}
		base := r.Context() // a forward sets a deadline of its own
		if s.reqTimeout > 0 {
			ctx, cancel := context.WithTimeout(r.Context(), s.reqTimeout)
			defer cancel()
			r = r.WithContext(ctx)
		}
		rq := &request{r: r, w: w, id: requestID(r), vars: mux.Vars(r), q: wire.ParseQuery(r.URL.RawQuery), detail: g.detail}
		sw.Header().Set("X-Openstack-Request-Id", rq.id)
		rt := g.byMethod[r.Method]
		rq.rt = rt
		var rep reply
		err := s.authenticate(rq, g)
		if err == nil {
			err = s.checkRequest(rq, g)
		}
		if err == nil && rt != nil && s.fwd != nil && forwardable(g.path) {
			// The project is known and the request valid: the queue's
			// owner serves it.
			var target *url.URL
			if target, err = s.fwd.route(rq); err == nil && target != nil {
				s.forward(sw, rq, target, base, g.path, start)
				return
			}
		}
		if err == nil {
			switch {
			case rt != nil:
				rep, err = s.call(rt, rq)
			case r.Method == http.MethodOptions:
				rep = reply{status: http.StatusOK, header: map[string]string{"Allow": g.allow}}
			default:
				err = &apiError{status: http.StatusMethodNotAllowed, title: "405 Method Not Allowed", allow: g.allow}
			}
		}
		if err != nil {
			ae := s.toAPIError(rq, err)
			s.writeError(sw, rq, ae)
			if ae.status < 500 && isAdminPath(g.path) {
				// An operator's mistake is worth a line saying why; 5xx are
				// logged by writeError already.
				s.log.Info().Str("request_id", rq.id).Str("method", rq.r.Method).Str("route", g.path).
					Int("status", ae.status).Str("title", ae.title).Str("description", clip(ae.description, 1024)).
					Msg("admin request refused")
			}
		} else {
			s.writeReply(sw, rq, rep)
		}
		s.observe(rq, g.path, sw, time.Since(start))
	})
}

// call runs a handler, turning a panic into an error (a 500 that names the
// request id) rather than a dropped connection.
func (s *Server) call(rt *route, rq *request) (rep reply, err error) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			err = fmt.Errorf("handler panic: %v\n%s", p, debug.Stack())
		}
	}()
	return rt.h(s, rq)
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	rq := &request{r: r, w: w, id: requestID(r)}
	sw.Header().Set("X-Openstack-Request-Id", rq.id)
	s.writeError(sw, rq, &apiError{status: http.StatusNotFound, title: "404 Not Found"})
	s.observe(rq, "unmatched", sw, time.Since(start))
}

// writeReply writes a handler's answer.
func (s *Server) writeReply(w http.ResponseWriter, rq *request, rep reply) {
	if rep.handler != nil {
		rep.handler.ServeHTTP(w, rq.r)
		return
	}
	h := w.Header()
	for k, v := range rep.header {
		h.Set(k, v)
	}
	if rep.location != "" {
		h.Set("Location", rep.location)
	}
	status := rep.status
	if status == 0 {
		status = http.StatusOK
	}
	data := rep.raw
	if rep.body != nil {
		var err error
		if data, err = encodeJSON(rep.body); err != nil {
			s.writeError(w, rq, s.toAPIError(rq, fmt.Errorf("encoding the response: %w", err)))
			return
		}
	}
	if status == http.StatusNoContent || status == http.StatusNotModified {
		w.WriteHeader(status)
		return
	}
	ct := rep.contentType
	if ct == "" {
		ct = "application/json"
	}
	h.Set("Content-Type", ct)
	h.Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(status)
	if rq.r.Method != http.MethodHead {
		_, _ = w.Write(data)
	}
}

// encodeJSON encodes v without HTML escaping (message bodies come back
// byte for byte as far as JSON allows) and without a trailing newline.
func encodeJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// requestID echoes a sane X-Openstack-Request-Id or makes "req-<uuid>".
func requestID(r *http.Request) string {
	if id := r.Header.Get("X-Openstack-Request-Id"); id != "" && len(id) <= 128 && printable(id) {
		return id
	}
	return "req-" + newUUID()
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// observe writes the access log line and the request metrics.
func (s *Server) observe(rq *request, route string, w *statusWriter, d time.Duration) {
	status := w.status
	if status == 0 {
		status = http.StatusOK
	}
	s.metrics.observe(route, rq.r.Method, status, d)
	ev := s.log.Info()
	if status >= 500 {
		ev = s.log.Warn()
	}
	ev = ev.Str("method", rq.r.Method).
		Str("route", route)
	// Only a name the route accepts is logged: a refused one may be huge
	// or hold control characters.
	if q := rq.queue(); validQueueName(q, s.lim.MaxQueueNameLength) {
		key := "queue"
		if rq.topic() {
			key = "topic"
		}
		ev = ev.Str(key, q)
	}
	ev = ev.Int("status", status).
		Float64("duration_ms", float64(d.Microseconds())/1000).
		Int64("bytes", w.bytes).
		Str("remote_addr", rq.r.RemoteAddr).
		Str("request_id", rq.id).
		Str("project", rq.project).
		Str("user", rq.user)
	if rq.forwardedTo != "" {
		ev = ev.Str("forwarded_to", rq.forwardedTo)
	}
	// Only a node id that can be logged safely is: the header is the
	// client's to send too.
	if by := rq.r.Header.Get(ForwardedHeader); by != "" && len(by) <= 128 && printable(by) {
		ev = ev.Str("forwarded_by", by)
	}
	ev.Msg("request")
}
