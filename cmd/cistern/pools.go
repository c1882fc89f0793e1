package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/cistern-mq/cistern/drivers"
	"github.com/cistern-mq/cistern/drivers/fsdriver"
	"github.com/cistern-mq/cistern/drivers/s3driver"
	"github.com/cistern-mq/cistern/drivers/swiftdriver"
	"github.com/cistern-mq/cistern/placement"
)

// A pool in the registry (and in the admin API) is a URI and options, as in
// Zaqar:
//
//	file:///var/lib/cistern                  fs, the path
//	swift+http://host:8080/auth/v1.0         swift, the auth URL; options: user, key, project, ...
//	s3+http://host:9000/bucket               s3 at an endpoint; options: access_key, secret_key, region, ...
//	s3:///bucket                             s3 on AWS
//
// Options are the keys of the config file's swift: or s3: section.

// spec turns a configured pool into its registry form.
func spec(p PoolConfig) (placement.PoolSpec, error) {
	s := placement.PoolSpec{Name: p.Name, Weight: p.Weight, Flavor: p.Flavor}
	var opts any
	switch p.Kind {
	case "fs":
		abs, err := filepath.Abs(p.Path)
		if err != nil {
			return s, err
		}
		s.URI = (&url.URL{Scheme: "file", Path: abs}).String()
	case "swift":
		s.URI = "swift+" + p.Swift.AuthURL
		o := p.Swift
		o.AuthURL = ""
		opts = o
	case "s3":
		if p.S3.Endpoint == "" {
			s.URI = "s3:///" + p.S3.Bucket
		} else {
			s.URI = "s3+" + strings.TrimSuffix(p.S3.Endpoint, "/") + "/" + p.S3.Bucket
		}
		o := p.S3
		o.Endpoint, o.Bucket = "", ""
		opts = o
	default:
		return s, fmt.Errorf("pool %q: kind %q", p.Name, p.Kind)
	}
	if opts != nil {
		raw, err := json.Marshal(opts)
		if err != nil {
			return s, err
		}
		s.Options = raw
	}
	return s, nil
}

// decodeOptions reads a pool's options into v, refusing unknown keys.
func decodeOptions(opts json.RawMessage, v any) error {
	if len(opts) == 0 {
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(string(opts)))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// openSpec opens the store a registry entry names; shared, for a node of a
// cluster, opens a folder beside the other nodes (fsdriver.NewShared).
func openSpec(ctx context.Context, s placement.PoolSpec, shared bool) (drivers.Store, error) {
	scheme, rest, ok := strings.Cut(s.URI, ":")
	if !ok {
		return nil, fmt.Errorf("uri %q has no scheme", s.URI)
	}
	strict := func(v any) error { return decodeOptions(s.Options, v) }
	switch {
	case scheme == "file":
		u, err := url.Parse(s.URI)
		if err != nil || u.Path == "" {
			return nil, fmt.Errorf("uri %q: want file:///path", s.URI)
		}
		if shared {
			return fsdriver.NewShared(u.Path)
		}
		return fsdriver.New(u.Path)
	case scheme == "swift+http" || scheme == "swift+https":
		var c SwiftConfig
		if err := strict(&c); err != nil {
			return nil, fmt.Errorf("options: %w", err)
		}
		c.AuthURL = strings.TrimPrefix(scheme, "swift+") + ":" + rest
		cfg := c.driver()
		if err := cfg.Validate(); err != nil {
			return nil, withConfigKeys(err, c)
		}
		return swiftdriver.New(ctx, cfg)
	case scheme == "s3" || scheme == "s3+http" || scheme == "s3+https":
		var c S3Config
		if err := strict(&c); err != nil {
			return nil, fmt.Errorf("options: %w", err)
		}
		u, err := url.Parse(strings.TrimPrefix(s.URI, "s3+"))
		if err != nil {
			return nil, err
		}
		c.Bucket = strings.Trim(u.Path, "/")
		if scheme != "s3" {
			c.Endpoint = u.Scheme + "://" + u.Host
		}
		cfg := c.driver()
		if err := cfg.Validate(); err != nil {
			return nil, withConfigKeys(err, c)
		}
		st, err := s3driver.New(ctx, cfg)
		if err != nil {
			return nil, err
		}
		return st, nil
	}
	return nil, fmt.Errorf("uri %q: scheme %q is not file, swift+http(s) or s3(+http(s))", s.URI, scheme)
}

// uriAllow is the allow-list of pool URI prefixes for the admin API: the
// configuration's pool_uri_allow, or by default the URIs of the pools it
// defines (an fs pool's folder covers what is under it).
func uriAllow(cfg Config, specs []placement.PoolSpec) []string {
	if len(cfg.PoolURIAllow) > 0 {
		return cfg.PoolURIAllow
	}
	out := make([]string, 0, len(specs))
	for _, s := range specs {
		out = append(out, s.URI)
	}
	return out
}
