// Package storemetrics wraps a drivers.Store and counts its requests by
// verb, pool and outcome for Prometheus, in the way of thanos-io/objstore's
// metrics decorator: an expected "not found" or "precondition failed" is
// an answer, not a failure.
package storemetrics

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cistern-mq/cistern/drivers"
)

// Metrics are the collectors shared by every wrapped store.
type Metrics struct {
	requests *prometheus.CounterVec
	failures *prometheus.CounterVec
	duration *prometheus.HistogramVec
	bytes    *prometheus.CounterVec
}

// NewMetrics registers the collectors with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cistern_store_requests_total",
			Help: "Object store requests by pool and verb.",
		}, []string{"pool", "verb"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cistern_store_request_failures_total",
			Help: "Object store requests that failed (not found and precondition failed are answers, not failures), by pool, verb and error kind.",
		}, []string{"pool", "verb", "kind"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cistern_store_request_duration_seconds",
			Help:    "Object store request latency by pool and verb.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"pool", "verb"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cistern_store_bytes_total",
			Help: "Bytes written (put) and read (get) by pool.",
		}, []string{"pool", "direction"}),
	}
	reg.MustRegister(m.requests, m.failures, m.duration, m.bytes)
	return m
}

// Wrap returns s counted under the pool name.
func (m *Metrics) Wrap(pool string, s drivers.Store) drivers.Store {
	return &Store{s: s, m: m, pool: pool}
}

// Store is a counted drivers.Store. It implements drivers.BatchDeleter
// whether or not the store underneath does, falling back the same way
// drivers.DeleteMany does.
type Store struct {
	s    drivers.Store
	m    *Metrics
	pool string
}

// Unwrap returns the store underneath.
func (s *Store) Unwrap() drivers.Store { return s.s }

func (s *Store) observe(verb string, start time.Time, err error) {
	s.m.requests.WithLabelValues(s.pool, verb).Inc()
	s.m.duration.WithLabelValues(s.pool, verb).Observe(time.Since(start).Seconds())
	if err == nil || errors.Is(err, drivers.ErrNotFound) || errors.Is(err, drivers.ErrPreconditionFailed) {
		return
	}
	kind := "other"
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		kind = "cancelled"
	case errors.Is(err, drivers.ErrUnavailable):
		kind = "unavailable"
	case errors.Is(err, drivers.ErrInvalid):
		kind = "invalid"
	case errors.Is(err, drivers.ErrNotSupported):
		kind = "not_supported"
	}
	s.m.failures.WithLabelValues(s.pool, verb, kind).Inc()
}

// Put implements drivers.Store.
func (s *Store) Put(ctx context.Context, c, k string, data []byte, o *drivers.PutOptions) error {
	start := time.Now()
	err := s.s.Put(ctx, c, k, data, o)
	s.observe("put", start, err)
	if err == nil {
		s.m.bytes.WithLabelValues(s.pool, "put").Add(float64(len(data)))
	}
	return err
}

// Get implements drivers.Store.
func (s *Store) Get(ctx context.Context, c, k string, o *drivers.GetOptions) ([]byte, error) {
	start := time.Now()
	b, err := s.s.Get(ctx, c, k, o)
	s.observe("get", start, err)
	s.m.bytes.WithLabelValues(s.pool, "get").Add(float64(len(b)))
	return b, err
}

// Head implements drivers.Store.
func (s *Store) Head(ctx context.Context, c, k string) (drivers.Attrs, error) {
	start := time.Now()
	a, err := s.s.Head(ctx, c, k)
	s.observe("head", start, err)
	return a, err
}

// Delete implements drivers.Store.
func (s *Store) Delete(ctx context.Context, c, k string) error {
	start := time.Now()
	err := s.s.Delete(ctx, c, k)
	s.observe("delete", start, err)
	return err
}

// DeleteKeys implements drivers.BatchDeleter.
func (s *Store) DeleteKeys(ctx context.Context, c string, keys []string) error {
	if _, ok := s.s.(drivers.BatchDeleter); !ok {
		for _, k := range keys {
			if err := s.Delete(ctx, c, k); err != nil {
				return err
			}
		}
		return nil
	}
	start := time.Now()
	err := drivers.DeleteMany(ctx, s.s, c, keys)
	s.observe("delete_many", start, err)
	return err
}

// List implements drivers.Store.
func (s *Store) List(ctx context.Context, c string, o *drivers.ListOptions) (drivers.Page, error) {
	start := time.Now()
	p, err := s.s.List(ctx, c, o)
	s.observe("list", start, err)
	return p, err
}

// CreateContainer implements drivers.Store.
func (s *Store) CreateContainer(ctx context.Context, c string) error {
	start := time.Now()
	err := s.s.CreateContainer(ctx, c)
	s.observe("create_container", start, err)
	return err
}

// DeleteContainer implements drivers.Store.
func (s *Store) DeleteContainer(ctx context.Context, c string) error {
	start := time.Now()
	err := s.s.DeleteContainer(ctx, c)
	s.observe("delete_container", start, err)
	return err
}

// ListContainers implements drivers.Store.
func (s *Store) ListContainers(ctx context.Context, o *drivers.ListOptions) (drivers.Page, error) {
	start := time.Now()
	p, err := s.s.ListContainers(ctx, o)
	s.observe("list_containers", start, err)
	return p, err
}

// Capabilities implements drivers.Store.
func (s *Store) Capabilities() drivers.Capabilities { return s.s.Capabilities() }

// Close implements drivers.Store.
func (s *Store) Close() error { return s.s.Close() }

var _ drivers.BatchDeleter = (*Store)(nil)
