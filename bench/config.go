package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"time"
)

// Config describes one run. Start from DefaultConfig; Run calls Validate.
type Config struct {
	URL     string `json:"url"`     // endpoint root, e.g. http://127.0.0.1:8888
	Project string `json:"project"` // X-Project-ID
	Token   string `json:"-"`       // X-Auth-Token; empty sends none

	Queues int    `json:"queues"` // workers of each role are spread over the queues round robin
	Prefix string `json:"prefix"` // queue names are Prefix + index
	Keep   bool   `json:"keep"`   // leave the queues (and what is in them) at the end

	Producers int `json:"producers"`
	Consumers int `json:"consumers"`
	Observers int `json:"observers"`

	Batch int `json:"batch"` // messages per POST
	Size  int `json:"size"`  // bytes of each message body, as JSON
	TTL   int `json:"ttl"`   // message ttl, seconds

	ClaimLimit int `json:"claim_limit"` // messages per claim
	ClaimTTL   int `json:"claim_ttl"`   // seconds
	ClaimGrace int `json:"claim_grace"` // seconds
	Pop        int `json:"pop"`         // when > 0, consumers DELETE ?pop=Pop instead of claiming
	ListLimit  int `json:"list_limit"`  // messages per observer GET

	// EmptyWait is how long a consumer waits after a claim or pop that
	// found nothing, so that idle consumers do not spin.
	EmptyWait time.Duration `json:"-"`

	Warmup   time.Duration `json:"-"`        // load that is sent but not measured
	Duration time.Duration `json:"-"`        // the measured window; with Messages, its upper bound
	Messages int64         `json:"messages"` // when > 0, stop once this many messages are posted and consumed
	Grace    time.Duration `json:"-"`        // extra time in the hard deadline for setup, draining and teardown

	// MetricsURL is scraped at both ends of the window for StoreMetric;
	// empty skips it.
	MetricsURL string `json:"metrics_url"`

	// Progress, when set, is called from the goroutine running the
	// benchmark as each phase begins. The measured window starts after
	// the call for PhaseMeasure returns.
	Progress func(Phase) `json:"-"`
}

// Phase is a stage of a run, in order.
type Phase string

const (
	PhaseSetup    Phase = "setup"    // creating the queues
	PhaseWarmup   Phase = "warmup"   // load runs, nothing is counted
	PhaseMeasure  Phase = "measure"  // the measured window
	PhaseDrain    Phase = "drain"    // waiting for requests in flight
	PhaseTeardown Phase = "teardown" // deleting the queues
)

// DefaultConfig returns a run of 10 s against a local endpoint: one queue,
// one producer posting 10 messages of 100 bytes, one consumer claiming 10.
// The queue prefix is random, bench-<8 hex>-, so that runs do not share
// queues (or a crashed run's leftovers) unless asked to.
func DefaultConfig() Config {
	return Config{
		URL:        "http://127.0.0.1:8888",
		Project:    "cistern-bench",
		Queues:     1,
		Prefix:     "bench-" + newUUID()[:8] + "-",
		Producers:  1,
		Consumers:  1,
		Batch:      10,
		Size:       100,
		TTL:        3600,
		ClaimLimit: 10,
		ClaimTTL:   60,
		ClaimGrace: 60,
		ListLimit:  10,
		EmptyWait:  10 * time.Millisecond,
		Duration:   10 * time.Second,
		Grace:      10 * time.Second,
	}
}

// queueName is Zaqar's rule for queue names.
var queueName = regexp.MustCompile(`^[a-zA-Z0-9_\-.]{1,64}$`)

// Validate reports every problem with c at once. It checks only what the
// tool needs; limits that depend on the server (claim limit at most 20,
// ttl at least 60, 256 KiB per POST on Zaqar) are left to the server,
// whose answers show up as errors in the report.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("url %q: want http://host:port", c.URL)
	}
	if c.Project == "" {
		bad("project: empty (Zaqar needs an X-Project-ID)")
	}
	if c.Queues < 1 {
		bad("queues: %d, want at least 1", c.Queues)
	} else if last := c.QueueName(c.Queues - 1); !queueName.MatchString(last) {
		bad("prefix %q: queue name %q is not 1-64 of [a-zA-Z0-9_-.]", c.Prefix, last)
	}
	if c.Producers < 0 || c.Consumers < 0 || c.Observers < 0 {
		bad("producers, consumers and observers cannot be negative")
	}
	if c.Producers+c.Consumers+c.Observers == 0 {
		bad("no workers: set producers, consumers or observers")
	}
	if c.Batch < 1 {
		bad("batch: %d, want at least 1", c.Batch)
	}
	if c.Size < 1 {
		bad("size: %d, want at least 1", c.Size)
	}
	if c.ClaimLimit < 1 || c.ListLimit < 1 || c.Pop < 0 {
		bad("claim-limit and list-limit must be at least 1, pop at least 0")
	}
	if c.TTL < 0 || c.ClaimTTL < 0 || c.ClaimGrace < 0 {
		bad("ttl, claim-ttl and claim-grace cannot be negative")
	}
	if c.Warmup < 0 || c.EmptyWait < 0 {
		bad("warmup and empty-wait cannot be negative")
	}
	if c.Duration <= 0 {
		bad("duration: %v, want more than 0", c.Duration)
	}
	if c.Grace <= 0 {
		bad("grace: %v, want more than 0", c.Grace)
	}
	if c.Messages < 0 {
		bad("messages: %d, cannot be negative", c.Messages)
	}
	if c.Messages > 0 && c.Producers+c.Consumers == 0 {
		bad("messages: needs producers or consumers to count")
	}
	if c.MetricsURL != "" {
		if u, err := url.Parse(c.MetricsURL); err != nil || u.Host == "" {
			bad("metrics url %q: want http://host:port/metrics", c.MetricsURL)
		}
	}
	return errors.Join(errs...)
}

// QueueName returns the name of queue i.
func (c *Config) QueueName(i int) string { return fmt.Sprintf("%s%d", c.Prefix, i) }

// Deadline is the longest a run may take: warm-up, window and grace.
func (c *Config) Deadline() time.Duration { return c.Warmup + c.Duration + c.Grace }

// MarshalJSON writes durations as seconds (the *_s keys) and leaves out
// the token.
func (c Config) MarshalJSON() ([]byte, error) {
	type plain Config // the same fields and tags, without this method
	return json.Marshal(struct {
		plain
		EmptyWait float64 `json:"empty_wait_s"`
		Warmup    float64 `json:"warmup_s"`
		Duration  float64 `json:"duration_s"`
		Grace     float64 `json:"grace_s"`
	}{plain(c), c.EmptyWait.Seconds(), c.Warmup.Seconds(), c.Duration.Seconds(), c.Grace.Seconds()})
}
