package main

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cistern-mq/cistern/placement"
)

// depthCollector exports queue depths at scrape time: per pool, the queues
// in memory and their messages; per queue, its depth and the age of its
// oldest message, for every queue in memory and every queue unloaded since
// (what it held then: index.Engine.QueueDepths), which bounds the series
// to the queues in use plus 10,000 per pool.
type depthCollector struct {
	r        *placement.Router
	now      func() time.Time
	queues   *prometheus.Desc
	messages *prometheus.Desc
	depth    *prometheus.Desc
	age      *prometheus.Desc
	jobjects *prometheus.Desc
	jbatches *prometheus.Desc
}

func newDepthCollector(r *placement.Router) *depthCollector {
	return &depthCollector{
		r:        r,
		queues:   prometheus.NewDesc("cistern_queues_loaded", "Queues in memory, by pool.", []string{"pool"}, nil),
		messages: prometheus.NewDesc("cistern_queue_messages", "Live messages in the queues in memory (queue depth), by pool.", []string{"pool"}, nil),
		depth: prometheus.NewDesc("cistern_queue_depth", "Live messages of one queue (free, claimed and delayed); for a queue unloaded for idleness, what it held then, until the last of them expires.",
			[]string{"pool", "project", "queue"}, nil),
		age: prometheus.NewDesc("cistern_queue_oldest_message_age_seconds", "Age of the oldest live message of one queue (0 when empty); for a queue unloaded for idleness, from what it held then.",
			[]string{"pool", "project", "queue"}, nil),
		jobjects: prometheus.NewDesc("cistern_journal_objects", "Objects of the node's journal kept in the store, by pool (trimmed once their batches are folded into their queues).", []string{"pool"}, nil),
		jbatches: prometheus.NewDesc("cistern_journal_unfolded_batches", "Batches in the journal not folded into their queues yet, by pool.", []string{"pool"}, nil),
		now:      time.Now,
	}
}

func (c *depthCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.queues
	ch <- c.messages
	ch <- c.depth
	ch <- c.age
	ch <- c.jobjects
	ch <- c.jbatches
}

func (c *depthCollector) Collect(ch chan<- prometheus.Metric) {
	for _, d := range c.r.Depths() {
		ch <- prometheus.MustNewConstMetric(c.queues, prometheus.GaugeValue, float64(d.Queues), d.Pool)
		ch <- prometheus.MustNewConstMetric(c.messages, prometheus.GaugeValue, float64(d.Messages), d.Pool)
		ch <- prometheus.MustNewConstMetric(c.jobjects, prometheus.GaugeValue, float64(d.JournalObjects), d.Pool)
		ch <- prometheus.MustNewConstMetric(c.jbatches, prometheus.GaugeValue, float64(d.JournalBatches), d.Pool)
	}
	now := c.now()
	for pool, ds := range c.r.QueueDepths() {
		for _, d := range ds {
			age := 0.0
			if !d.Oldest.IsZero() {
				age = max(now.Sub(d.Oldest).Seconds(), 0)
			}
			ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(d.Messages), pool, d.Ref.Project, d.Ref.Name)
			ch <- prometheus.MustNewConstMetric(c.age, prometheus.GaugeValue, age, pool, d.Ref.Project, d.Ref.Name)
		}
	}
}
