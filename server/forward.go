package server

import (
	"context"
	"errors"
	stdlog "log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Forwarding in cluster mode (docs/cluster.md): any node answers any
// request. A request for a queue this node does not own goes, unchanged,
// to the node that owns it, and the owner's answer comes back as is. A
// request is forwarded twice at most: the forwarding node marks it with
// ForwardedHeader and counts hops, a node that gets a marked request for a
// queue it does not own either (ownership moved meanwhile) sends it on to
// the owner it knows once more, and a third answers 503 with Retry-After.
// Whatever keeps the owner from answering is a 503 with Retry-After too,
// never a 502: a client of Zaqar knows to retry a 503. Only a forward that
// could not even dial the owner is sent again (to the owner known then),
// since a request body partly sent cannot be sent again.

// Cluster says which node serves a queue (cluster mode); nil in
// single-node mode.
type Cluster interface {
	// Owner tells whether this node serves (project, queue) (self), or
	// else the base URL of the node that does, like
	// http://127.0.0.1:8889; "" when nobody owns it yet.
	Owner(project, queue string) (self bool, owner string)
	// Members is the membership as the admin /v2/health shows it: any
	// JSON-marshalable value.
	Members() any
}

// ForwardedHeader marks a forwarded request with the id of the node that
// forwarded it, so that it is never forwarded again.
const ForwardedHeader = "X-Cistern-Forwarded"

// Errors of forwarding, each a 503 with Retry-After (errors.go).
var (
	// ErrNoOwner: no node owns the queue yet (a node just died or joined,
	// and the ring's new owner has not taken it).
	ErrNoOwner = errors.New("no node owns the queue yet")
	// errForwardLoop: a forwarded request reached a node that does not own
	// the queue either.
	errForwardLoop = errors.New("forwarded request reached a node that does not own the queue")
	// errForwardFailed: the owner could not be reached or did not answer.
	errForwardFailed = errors.New("the node that owns the queue did not answer")
)

// Forwarding transport limits: forwards go to a handful of peers, each
// over a pool of kept-alive connections.
const (
	forwardDialTimeout     = 2 * time.Second
	forwardIdleConnTimeout = 90 * time.Second
	forwardIdlePerHost     = 64
	forwardIdleTotal       = 256
	// forwardExtraTime is how much longer than the owner's own request
	// deadline a forward waits, so that the owner's 503 (with its reason)
	// reaches the client rather than the forwarder's.
	forwardExtraTime = 2 * time.Second
)

// forwarder sends requests to the owners of their queues.
type forwarder struct {
	cluster   Cluster
	node      string // this node's id, the value of ForwardedHeader
	transport *http.Transport
	errorLog  *stdlog.Logger // what the proxy itself has to say (an answer cut short)
	forwarded *prometheus.CounterVec
	latency   prometheus.Histogram
}

func newForwarder(s *Server, c Cluster, node string) (*forwarder, error) {
	f := &forwarder{
		cluster:  c,
		node:     node,
		errorLog: stdlog.New(warnWriter{s.log}, "forward: ", 0),
		// One transport for every forward: connections to a peer are
		// reused. No Proxy: the environment's HTTP proxy is for clients,
		// not for nodes talking to each other.
		transport: &http.Transport{
			DialContext:           (&net.Dialer{Timeout: forwardDialTimeout, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:          forwardIdleTotal,
			MaxIdleConnsPerHost:   forwardIdlePerHost,
			IdleConnTimeout:       forwardIdleConnTimeout,
			ExpectContinueTimeout: time.Second,
		},
		forwarded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cistern_forwarded_requests_total",
			Help: "Requests for a queue another node owns, by outcome: ok (the owner answered), error (it could not be reached), no_owner (nobody owns the queue yet), loop (a forwarded request reached a node that does not own the queue either).",
		}, []string{"outcome"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cistern_forward_duration_seconds",
			Help:    "Time from sending a forwarded request to the owner to the end of its answer.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
	}
	var err error
	if f.forwarded, err = register(s.reg, f.forwarded); err != nil {
		return nil, err
	}
	if f.latency, err = register(s.reg, f.latency); err != nil {
		return nil, err
	}
	for _, o := range []string{"ok", "error", "no_owner", "loop"} {
		f.forwarded.WithLabelValues(o) // every outcome shows, at 0
	}
	return f, nil
}

// close drops the kept-alive connections to the peers.
func (f *forwarder) close() { f.transport.CloseIdleConnections() }

// route decides where a request for a queue goes: served here (nil, nil),
// to the owner (its URL), or refused (an error for the mapper).
func (f *forwarder) route(rq *request) (*url.URL, error) {
	self, owner := f.cluster.Owner(rq.project, rq.ref().Name)
	if !self && owner == "" {
		self, owner, _ = f.waitOwner(rq, func(self bool, owner string) bool { return self || owner != "" })
	}
	switch {
	case self:
		return nil, nil
	case rq.r.Header.Get(ForwardedHeader) != "" && (owner == "" || hops(rq.r) >= MaxHops):
		f.forwarded.WithLabelValues("loop").Inc()
		return nil, errForwardLoop
	case owner == "":
		f.forwarded.WithLabelValues("no_owner").Inc()
		return nil, ErrNoOwner
	}
	u, err := url.Parse(owner)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		f.forwarded.WithLabelValues("error").Inc()
		return nil, &forwardError{owner: owner, err: errors.New("the owner's advertised URL is not an http(s) URL")}
	}
	return u, nil
}

// ownerWait is how long a request for a queue nobody owns waits for an
// owner before its 503: a hand-off (SIGTERM, a node joining) leaves a
// shard without an owner for well under a second, and a request that waits
// it out is answered instead of refused.
const ownerWait = 3 * time.Second

// waitOwner polls the ownership of rq's queue until done(self, owner) holds,
// the request's context ends or ownerWait has passed; it returns the last
// answer and whether done held.
func (f *forwarder) waitOwner(rq *request, done func(self bool, owner string) bool) (bool, string, bool) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	give := time.NewTimer(ownerWait)
	defer give.Stop()
	for {
		self, owner := f.cluster.Owner(rq.project, rq.ref().Name)
		if done(self, owner) {
			return self, owner, true
		}
		select {
		case <-rq.ctx().Done():
			return self, owner, false
		case <-give.C:
			return self, owner, false
		case <-tick.C:
		}
	}
}

// forwardError is a forward that failed; the owner is logged, never shown.
type forwardError struct {
	owner string
	err   error
}

func (e *forwardError) Error() string { return "forwarding to " + e.owner + ": " + e.err.Error() }
func (e *forwardError) Is(target error) bool {
	return target == errForwardFailed
}
func (e *forwardError) Unwrap() error { return e.err }

// forward sends rq to the owner at target, writes its answer to w and
// records the request (access log line, metrics) under route. The body is
// streamed, not read here: the owner enforces the limits.
func (s *Server) forward(w *statusWriter, rq *request, target *url.URL, base context.Context, route string, start time.Time) {
	f := s.fwd
	rq.forwardedTo = target.Host
	sent := time.Now()
	// The owner echoes the request id sent to it; ours would be a second
	// value of the header.
	w.Header().Del("X-Openstack-Request-Id")
	var failed error
	rp := &httputil.ReverseProxy{
		Transport: &redial{f: f, rq: rq},
		ErrorLog:  f.errorLog,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
			pr.Out.Header.Set(ForwardedHeader, f.node)
			pr.Out.Header.Set(HopsHeader, strconv.Itoa(hops(rq.r)+1))
			pr.Out.Header.Set("X-Openstack-Request-Id", rq.id)
		},
		// The owner's answer goes as is; only a failure to get one is
		// answered here, before anything was written.
		ErrorHandler: func(rw http.ResponseWriter, r *http.Request, err error) {
			failed = err
			rw.Header().Set("X-Openstack-Request-Id", rq.id)
			s.writeError(rw, rq, s.toAPIError(rq, &forwardError{owner: target.Host, err: err}))
		},
	}
	// The owner applies its own request deadline: the forward waits a
	// little longer, so that the owner's answer says why.
	ctx := base
	if s.reqTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(base, s.reqTimeout+forwardExtraTime)
		defer cancel()
	}
	defer func() {
		p := recover()
		outcome := "ok"
		if p != nil || failed != nil {
			outcome = "error"
		}
		f.forwarded.WithLabelValues(outcome).Inc()
		f.latency.Observe(time.Since(sent).Seconds())
		if p != nil {
			// The owner's answer broke off after its headers went out: the
			// proxy aborts the client's connection too, so that the client
			// sees a cut answer rather than a short one.
			s.log.Warn().Str("request_id", rq.id).Str("forwarded_to", target.Host).Interface("cause", p).
				Msg("the owner's answer broke off; the client's connection is closed")
		}
		s.observe(rq, route, w, time.Since(start))
		if p != nil {
			panic(p)
		}
	}()
	rp.ServeHTTP(w, rq.r.WithContext(ctx))
}

// HopsHeader counts the forwards a request took: a node that gets a
// forwarded request for a queue it does not own (ownership moved while it
// was on its way) sends it on to the owner it knows, once; a third node
// answers 503. So a request never loops, and a hand-off between the first
// hop and the second is absorbed.
const HopsHeader = "X-Cistern-Hops"

// MaxHops is how many forwards a request may take: a request carrying
// ForwardedHeader and MaxHops in HopsHeader is served only by the owner.
const MaxHops = 2

// hops is how many times r was forwarded already.
func hops(r *http.Request) int {
	if r.Header.Get(ForwardedHeader) == "" {
		return 0
	}
	n, err := strconv.Atoi(r.Header.Get(HopsHeader))
	if err != nil || n < 1 {
		return 1 // a node that does not count hops forwarded it once
	}
	return n
}

// redial is the forwards' transport: when the owner cannot even be dialled
// (it exited a moment ago, or it is not up yet), nothing of the request was
// sent, so it asks again who owns the queue, waiting out a hand-off, and
// tries the new owner once.
type redial struct {
	f  *forwarder
	rq *request
}

func (t *redial) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.f.transport.RoundTrip(req)
	var op *net.OpError
	if err == nil || !errors.As(err, &op) || op.Op != "dial" {
		return resp, err
	}
	owner := t.f.otherOwner(t.rq, req.URL.Host)
	if owner == nil {
		return nil, err
	}
	again := req.Clone(req.Context())
	again.URL.Scheme, again.URL.Host, again.Host = owner.Scheme, owner.Host, owner.Host
	t.rq.forwardedTo = owner.Host
	return t.f.transport.RoundTrip(again)
}

// otherOwner waits up to ownerWait for rq's queue to have an owner other
// than the one at host (nil if none, or if it is this node now: the client
// retries then).
func (f *forwarder) otherOwner(rq *request, host string) *url.URL {
	var u *url.URL
	self, _, ok := f.waitOwner(rq, func(self bool, owner string) bool {
		if self {
			return true
		}
		p, err := url.Parse(owner)
		if owner == "" || err != nil || p.Host == host || (p.Scheme != "http" && p.Scheme != "https") {
			return false
		}
		u = p
		return true
	})
	if !ok || self {
		return nil
	}
	return u
}

// warnWriter logs each line written to it as a warning.
type warnWriter struct{ log zerolog.Logger }

func (w warnWriter) Write(p []byte) (int, error) {
	w.log.Warn().Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}

// forwardable reports whether a route names one queue or topic, so that
// its owner serves it (a topic is owned as the queue it is stored as). The
// lists of queues and topics span owners and read the shared catalog: any
// node answers them.
func forwardable(path string) bool {
	// The admin routes are served on the admin listener, which the
	// owner's advertise URL (its public listener) does not serve: each
	// answers for the cluster itself (queuePool).
	return (strings.Contains(path, "{queue_name}") || strings.Contains(path, "{topic_name}")) && !isAdminPath(path)
}
