package cluster

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are one node's; they exist whether or not a registry is given, so
// that tests read the counters either way.
type metrics struct {
	changes    *prometheus.CounterVec
	requests   *prometheus.HistogramVec
	commitTxns prometheus.Counter
	commitOps  prometheus.Counter
	gauges     []prometheus.Collector
}

func newMetrics(n *Node) *metrics {
	m := &metrics{
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cistern_cluster_ownership_changes_total",
			Help: "Shards this node acquired, released (handoff) or lost (lease or key gone).",
		}, []string{"change"}),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cistern_etcd_request_seconds",
			Help:    "Latency of this node's etcd requests, by operation.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"op"}),
		commitTxns: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cistern_etcd_commit_txns_total",
			Help: "Group-commit transactions sent to etcd.",
		}),
		commitOps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cistern_etcd_commit_ops_total",
			Help: "Head commits carried by those transactions.",
		}),
	}
	m.gauges = []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cistern_cluster_members",
			Help: "Live members this node sees.",
		}, func() float64 { return float64(len(n.Status().Members)) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cistern_cluster_owned_shards",
			Help: "Shards this node owns now.",
		}, func() float64 { return float64(n.OwnedShards()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cistern_cluster_lease_fresh",
			Help: "1 while the node's lease is confirmed recently enough to serve.",
		}, func() float64 {
			if n.LeaseFresh() {
				return 1
			}
			return 0
		}),
	}
	for _, c := range []string{changeAcquired, changeReleased, changeLost} {
		m.changes.WithLabelValues(c)
	}
	return m
}

const (
	changeAcquired = "acquired"
	changeReleased = "released"
	changeLost     = "lost"
)

func (m *metrics) register(reg *prometheus.Registry) error {
	cs := append([]prometheus.Collector{m.changes, m.requests, m.commitTxns, m.commitOps}, m.gauges...)
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// observe records one etcd request's latency.
func (m *metrics) observe(op string, start time.Time) {
	m.requests.WithLabelValues(op).Observe(time.Since(start).Seconds())
}
