package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cistern-mq/cistern/placement"
)

// depthCollector exports queue depths per pool at scrape time. Depth per
// queue would give every queue name its own series; per pool it stays
// bounded.
type depthCollector struct {
	r        *placement.Router
	queues   *prometheus.Desc
	messages *prometheus.Desc
}

func newDepthCollector(r *placement.Router) *depthCollector {
	return &depthCollector{
		r:        r,
		queues:   prometheus.NewDesc("cistern_queues_loaded", "Queues in memory, by pool.", []string{"pool"}, nil),
		messages: prometheus.NewDesc("cistern_queue_messages", "Live messages in the queues in memory (queue depth), by pool.", []string{"pool"}, nil),
	}
}

func (c *depthCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.queues
	ch <- c.messages
}

func (c *depthCollector) Collect(ch chan<- prometheus.Metric) {
	for _, d := range c.r.Depths() {
		ch <- prometheus.MustNewConstMetric(c.queues, prometheus.GaugeValue, float64(d.Queues), d.Pool)
		ch <- prometheus.MustNewConstMetric(c.messages, prometheus.GaugeValue, float64(d.Messages), d.Pool)
	}
}
