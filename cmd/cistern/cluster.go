package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// Cluster mode settings (docs/cluster.md): set etcd endpoints and the node
// joins the others serving the same pools; leave them out and it is a
// single node as before. The settings are checked here, before anything
// starts, and resolved into one ClusterConfig (defaults filled in) that
// start-up hands to the cluster package.

// EtcdConfig is the etcd section of the config file.
type EtcdConfig struct {
	// Endpoints are etcd's client URLs; any set means cluster mode.
	Endpoints []string `yaml:"endpoints"`
	// LeaseTTL is how long a node that stops renewing keeps its queues:
	// a dead node's queues move after about this long (default 5 s, whole
	// seconds, at least 1 s).
	LeaseTTL time.Duration `yaml:"lease_ttl"`
}

// ClusterConfig is cluster mode as start-up runs it, with every default
// resolved; Config.Cluster is nil for a single node.
type ClusterConfig struct {
	Endpoints []string      // etcd client URLs
	NodeID    string        // this node's name among the members
	Advertise string        // base URL the other nodes forward to
	LeaseTTL  time.Duration // etcd lease of the node's membership and ownership
}

// DefaultLeaseTTL is etcd.lease_ttl when unset.
const DefaultLeaseTTL = 5 * time.Second

// maxNodeID bounds a node id: it is a header value and part of etcd keys.
const maxNodeID = 128

// splitEndpoints reads a comma-separated list (-etcd, CISTERN_ETCD).
func splitEndpoints(s string) []string {
	var out []string
	for _, e := range strings.Split(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// resolveCluster checks the cluster settings of c and fills c.Cluster, or
// leaves it nil (and warns about settings that then do nothing) when no
// etcd endpoint is set.
func (c *Config) resolveCluster(hostname func() (string, error)) error {
	if len(c.Etcd.Endpoints) == 0 {
		for _, s := range []struct {
			set  bool
			name string
		}{
			{c.NodeID != "", "node_id (-node-id, CISTERN_NODE_ID)"},
			{c.Advertise != "", "advertise (-advertise, CISTERN_ADVERTISE)"},
			{c.Etcd.LeaseTTL != 0, "etcd.lease_ttl"},
		} {
			if s.set {
				c.warnings = append(c.warnings, s.name+" is ignored: no etcd endpoints (-etcd, CISTERN_ETCD, etcd.endpoints), so this is a single node")
			}
		}
		c.Cluster = nil
		return nil
	}
	cc := &ClusterConfig{LeaseTTL: c.Etcd.LeaseTTL, NodeID: c.NodeID, Advertise: c.Advertise}
	for _, e := range c.Etcd.Endpoints {
		if err := checkHTTPURL(e); err != nil {
			return fmt.Errorf("etcd endpoint %q: %v: want a URL like http://127.0.0.1:2379", e, err)
		}
		cc.Endpoints = append(cc.Endpoints, strings.TrimRight(e, "/"))
	}
	switch {
	case cc.LeaseTTL == 0:
		cc.LeaseTTL = DefaultLeaseTTL
	case cc.LeaseTTL < time.Second:
		return fmt.Errorf("etcd.lease_ttl %s is below 1s: etcd leases count whole seconds", cc.LeaseTTL)
	case cc.LeaseTTL%time.Second != 0:
		return fmt.Errorf("etcd.lease_ttl %s is not a whole number of seconds, which etcd leases count", cc.LeaseTTL)
	}
	host, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return fmt.Errorf("listen address %q: %v", c.Listen, err)
	}
	if cc.NodeID == "" {
		h, err := hostname()
		if err != nil {
			return fmt.Errorf("node id: the host name is unknown (%v): set -node-id / CISTERN_NODE_ID", err)
		}
		cc.NodeID = h + "-" + port
	}
	if err := checkNodeID(cc.NodeID); err != nil {
		return fmt.Errorf("node id %q: %v", cc.NodeID, err)
	}
	if cc.Advertise == "" {
		if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
			return fmt.Errorf("-listen %s names no address other nodes can reach: set -advertise / CISTERN_ADVERTISE to this node's URL, like http://10.0.0.5:%s", c.Listen, port)
		}
		cc.Advertise = "http://" + c.Listen
	}
	if err := checkHTTPURL(cc.Advertise); err != nil {
		return fmt.Errorf("advertise %q: %v: want this node's base URL, like http://10.0.0.5:8888", cc.Advertise, err)
	}
	u, _ := url.Parse(cc.Advertise)
	if ip := net.ParseIP(u.Hostname()); ip != nil && ip.IsUnspecified() {
		return fmt.Errorf("advertise %q: other nodes cannot reach an unspecified address", cc.Advertise)
	}
	cc.Advertise = strings.TrimRight(cc.Advertise, "/")
	c.Cluster = cc
	return nil
}

// checkHTTPURL accepts an http(s) URL with a host and nothing after the
// path "/".
func checkHTTPURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return errors.New("not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New("the scheme is not http or https")
	case u.Host == "" || u.Hostname() == "":
		return errors.New("no host")
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.Fragment != "", u.User != nil:
		return errors.New("only scheme, host and port are allowed")
	}
	if p := u.Port(); p == "" && strings.HasSuffix(u.Host, ":") {
		return errors.New("empty port")
	}
	return nil
}

// checkNodeID accepts what a host name and port make: letters, digits and
// . _ - :, at most maxNodeID bytes.
func checkNodeID(id string) error {
	if len(id) > maxNodeID {
		return fmt.Errorf("longer than %d bytes", maxNodeID)
	}
	for _, r := range id {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-', r == ':':
		default:
			return fmt.Errorf("%q is not allowed: use letters, digits and . _ - :", r)
		}
	}
	return nil
}

// String is the cluster settings as -check-config prints them.
func (cc *ClusterConfig) String() string {
	if cc == nil {
		return "off (single node: no etcd endpoints)"
	}
	return fmt.Sprintf("etcd %s, node id %s, advertise %s, lease_ttl %s",
		strings.Join(cc.Endpoints, ","), cc.NodeID, cc.Advertise, cc.LeaseTTL)
}
