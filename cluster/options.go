package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/cistern-mq/cistern/index"
)

// Defaults for Options left zero.
const (
	DefaultLeaseTTL       = 5 * time.Second
	DefaultPartPower      = 8
	DefaultPrefix         = "/cistern/"
	DefaultDialTimeout    = 5 * time.Second
	DefaultRequestTimeout = 2 * time.Second
	// MaxPartPower bounds the shard count: every shard is an owner key and
	// a node lists them all, so 4096 is plenty for any cluster that one
	// etcd serves.
	MaxPartPower = 12
)

// NodeID names a node in the cluster (its member key, its owner keys'
// value and its ring pool).
type NodeID string

// Shard is a partition of the queue space (ring.Partition); ownership is
// decided per shard, not per queue.
type Shard uint32

// Options configure a Node. Zero fields take the defaults above.
type Options struct {
	// Endpoints are etcd's client URLs.
	Endpoints []string
	// NodeID names this node: unique in the cluster, no "/".
	NodeID NodeID
	// Advertise is the base URL other nodes forward requests to.
	Advertise string
	// LeaseTTL is the life of the node's lease without keepalive: how long
	// a dead node's shards stay unowned at most.
	LeaseTTL time.Duration
	// PartPower is P for 2^P shards. Every node of a cluster must use the
	// same one (Join fails when the stored ring differs).
	PartPower uint8
	// Prefix starts every key the cluster writes in etcd.
	Prefix string
	// DialTimeout bounds the first connection to etcd.
	DialTimeout time.Duration
	// RequestTimeout bounds every etcd request (a commit taking longer
	// fails with drivers.ErrUnavailable).
	RequestTimeout time.Duration
	Logger         zerolog.Logger
	// Registry, when set, gets the node's metrics.
	Registry *prometheus.Registry
	// Release makes the engines flush and unload every loaded queue that
	// match accepts. The node calls it before it deletes an owner key on
	// handoff (the shard's commits still succeed while it runs) and after
	// it lost shards (their commits fail). Nil means nothing to release.
	Release func(ctx context.Context, match func(index.QueueRef) bool) error
}

func (o *Options) setDefaults() {
	if o.LeaseTTL == 0 {
		o.LeaseTTL = DefaultLeaseTTL
	}
	if o.PartPower == 0 {
		o.PartPower = DefaultPartPower
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.RequestTimeout == 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
}

// Validate checks options after defaults are applied.
func (o *Options) Validate() error {
	switch {
	case len(o.Endpoints) == 0:
		return errors.New("cluster: no etcd endpoints")
	case o.NodeID == "" || strings.Contains(string(o.NodeID), "/"):
		return fmt.Errorf("cluster: node id %q: empty or has a /", o.NodeID)
	case o.Advertise == "":
		return errors.New("cluster: no advertise URL")
	case o.LeaseTTL < time.Second:
		// etcd counts lease TTLs in whole seconds.
		return fmt.Errorf("cluster: lease TTL %v under 1s", o.LeaseTTL)
	case o.PartPower > MaxPartPower:
		return fmt.Errorf("cluster: part power %d above %d", o.PartPower, MaxPartPower)
	case !strings.HasSuffix(o.Prefix, "/"):
		return fmt.Errorf("cluster: prefix %q does not end in /", o.Prefix)
	case o.DialTimeout < 0 || o.RequestTimeout < 0:
		return errors.New("cluster: negative timeout")
	}
	return nil
}
