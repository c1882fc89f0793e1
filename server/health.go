package server

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cistern-mq/cistern/index"
	"github.com/cistern-mq/cistern/placement"
	"github.com/cistern-mq/cistern/server/wire"
)

// Probes of the stores, for the routes that tell whether Cistern can serve
// (/healthz, /readyz, /v2/ping, /v2/health) and for cistern_pool_up. Every
// probe is one head of a fixed key per pool, never a listing, whose cost
// grows with the catalog. What a client of the public listener sees names
// pools at most; the stores' errors (which hold internal URLs) are shown
// only on the admin side.

// probeTimeout bounds one probe of the stores.
const probeTimeout = 5 * time.Second

// probeMaxAge is how old the last probe may be before a scrape of
// cistern_pool_up probes again.
const probeMaxAge = 10 * time.Second

// openPath reports whether a path needs no token, no Client-ID, no project
// and no Accept: what load balancers and scrapers ask, which cannot send
// them.
func openPath(path string) bool {
	return path == metricsPath || path == "/healthz" || path == "/readyz"
}

// pinger is what the engine (and the placement router) offer to tell
// whether their stores answer at a constant cost.
type pinger interface {
	Ping(ctx context.Context) error
}

// poolPinger is what the placement router offers to probe each pool.
type poolPinger interface {
	PingPools(ctx context.Context) []placement.PoolPing
}

// singlePool names the one store of a server over an index.Engine.
const singlePool = "default"

// probes remembers each pool's last probe for cistern_pool_up.
type probes struct {
	mu   sync.Mutex
	at   time.Time // of the last probe
	last []placement.PoolPing
}

// probePools asks every pool's store one constant-cost question and
// remembers the answers.
func (s *Server) probePools(ctx context.Context) []placement.PoolPing {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	var out []placement.PoolPing
	switch e := s.eng.(type) {
	case poolPinger:
		out = e.PingPools(ctx)
	case pinger:
		out = []placement.PoolPing{{Pool: singlePool, Err: e.Ping(ctx)}}
		if d, ok := e.(interface{ DamagedQueues() []index.QueueRef }); ok {
			out[0].Damaged = d.DamagedQueues()
		}
	default:
		// An engine without Ping is asked for a one-queue listing.
		_, err := s.eng.ListQueues(ctx, "", "", 1, false) // no real project is ""
		out = []placement.PoolPing{{Pool: singlePool, Err: err}}
	}
	s.probes.mu.Lock()
	s.probes.at, s.probes.last = s.now(), out
	s.probes.mu.Unlock()
	return out
}

// firstDown returns the first error of a probe, nil when every pool answered.
func firstDown(pp []placement.PoolPing) error {
	for _, p := range pp {
		if p.Err != nil {
			return p.Err
		}
	}
	return nil
}

// getHealthz is 204 whenever the process answers (liveness): it asks no
// store, so that a store outage does not make a supervisor restart a
// process that a restart cannot help.
func (s *Server) getHealthz(rq *request) (reply, error) {
	return reply{status: http.StatusNoContent}, nil
}

// readyBody is the 503 of /readyz.
type readyBody struct {
	Title       string   `json:"title"`
	Description string   `json:"description"`
	PoolsDown   []string `json:"pools_down"`
}

// getReadyz is 204 when every pool's store answers (readiness), else 503
// naming the pools that do not, never their errors.
func (s *Server) getReadyz(rq *request) (reply, error) {
	var down []string
	for _, p := range s.probePools(rq.ctx()) {
		if p.Err != nil {
			down = append(down, p.Pool)
		}
	}
	if len(down) == 0 {
		return reply{status: http.StatusNoContent}, nil
	}
	return reply{status: http.StatusServiceUnavailable, header: map[string]string{"Retry-After": "1"},
		body: readyBody{Title: "Service not ready", PoolsDown: down,
			Description: "The stores of these pools do not answer: " + strings.Join(down, ", ") + "."}}, nil
}

// getPing is 204 when every store answers, 503 otherwise (Zaqar's
// is_alive).
func (s *Server) getPing(rq *request) (reply, error) {
	if err := firstDown(s.probePools(rq.ctx())); err != nil {
		return reply{}, &apiError{status: http.StatusServiceUnavailable, title: "Service temporarily unavailable",
			description: "The store could not be reached. Please try again in a few seconds.", retryAfter: 1, cause: err}
	}
	return reply{status: http.StatusNoContent}, nil
}

// headPing is 204 always, as in Zaqar: it tells that the process answers.
func (s *Server) headPing(rq *request) (reply, error) {
	return reply{status: http.StatusNoContent}, nil
}

// getHealth is 200 with whether the stores answer and how many queues are
// loaded. Zaqar serves /v2/health only in admin mode, as a driver KPI
// dict; here the public side says only whether every store answers, and
// the admin side adds each pool with its store's error, Zaqar's
// operation_status (healthcheck.go) and, in cluster mode, this node's id
// and the members.
func (s *Server) getHealth(rq *request) (reply, error) {
	pp := s.probePools(rq.ctx())
	h := wire.Health{StorageReachable: firstDown(pp) == nil, QueuesLoaded: s.eng.Loaded()}
	if rq.detail {
		h.Pools = make([]wire.PoolHealth, len(pp))
		for i, p := range pp {
			h.Pools[i] = wire.PoolHealth{Name: p.Pool, Reachable: p.Err == nil}
			for _, ref := range p.Damaged {
				h.Pools[i].DamagedQueues = append(h.Pools[i].DamagedQueues, ref.String())
			}
			if p.Err != nil {
				h.Pools[i].Error = p.Err.Error()
			}
		}
		if s.cluster != nil {
			h.Node, h.Cluster = s.nodeID, s.cluster.Members()
		}
		h.OperationStatus = s.operationStatus(rq.ctx())
	}
	return reply{body: h}, nil
}

// poolUpCollector exports cistern_pool_up from the last probe, probing
// again when it is older than probeMaxAge.
type poolUpCollector struct {
	s    *Server
	desc *prometheus.Desc
}

func newPoolUpCollector(s *Server) *poolUpCollector {
	return &poolUpCollector{s: s, desc: prometheus.NewDesc("cistern_pool_up",
		"1 when the pool's store answered its last probe (a head of one key), 0 otherwise.", []string{"pool"}, nil)}
}

func (c *poolUpCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *poolUpCollector) Collect(ch chan<- prometheus.Metric) {
	c.s.probes.mu.Lock()
	at, last := c.s.probes.at, c.s.probes.last
	c.s.probes.mu.Unlock()
	if last == nil || c.s.now().Sub(at) > probeMaxAge {
		last = c.s.probePools(context.Background())
	}
	for _, p := range last {
		up := 1.0
		if p.Err != nil {
			up = 0
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, up, p.Pool)
	}
}
