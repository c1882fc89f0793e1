package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cistern-mq/cistern/placement"
)

// cistern -check-config: the configuration as the server would run it
// (defaults, file, environment and flags merged), secrets redacted, with
// where each pool comes from, and what start-up would warn about. It opens
// no listener; it reads the registry of the control pool when its store
// answers, to name the pools added through the admin API, and creates
// nothing (an fs control pool whose folder does not exist has no registry).

// redacted replaces a secret that is set.
const redacted = "<redacted>"

// registryTimeout bounds the read of the registry.
const registryTimeout = 5 * time.Second

// checkConfigWanted reports whether args ask for -check-config, so that a
// configuration that fails to parse is answered with status 1, not 2.
func checkConfigWanted(args []string) bool {
	return slices.ContainsFunc(args, func(a string) bool {
		switch a {
		case "-check-config", "--check-config", "-check-config=true", "--check-config=true":
			return true
		}
		return false
	})
}

// checkConfig prints the merged configuration to w and returns the exit
// status: 0 when it is valid, 1 with the error otherwise.
func checkConfig(ctx context.Context, args []string, getenv func(string) string, w io.Writer) int {
	cfg, err := parseConfig(args, getenv)
	if err != nil {
		fmt.Fprintln(w, "cistern: invalid configuration:", err)
		return 1
	}
	out, err := yaml.Marshal(cfg.redact())
	if err != nil {
		fmt.Fprintln(w, "cistern:", err)
		return 1
	}
	fmt.Fprintf(w, "# cistern %s: merged configuration (defaults < file < environment < flags), secrets redacted\n", buildVersion())
	_, _ = w.Write(out)
	fmt.Fprintln(w, "\n# pools")
	inConfig := map[string]bool{}
	for _, p := range cfg.Pools {
		inConfig[p.Name] = true
		fmt.Fprintf(w, "#   %s (%s): %s\n", p.Name, p.Kind, p.source)
	}
	for _, line := range registryPools(ctx, cfg, inConfig) {
		fmt.Fprintln(w, "#   "+line)
	}
	fmt.Fprintln(w, "# cluster:", cfg.Cluster)
	for _, msg := range cfg.warnings {
		fmt.Fprintln(w, "# warning:", msg)
	}
	fmt.Fprintln(w, "# configuration valid")
	return 0
}

// registryPools names the pools of the control pool's registry that the
// configuration does not define, or says why the registry was not read.
func registryPools(ctx context.Context, cfg Config, inConfig map[string]bool) []string {
	control := cfg.Pools[0]
	if control.Kind == "fs" {
		if _, err := os.Stat(control.Path); err != nil {
			return []string{"registry: none yet (" + control.Path + " does not exist)"}
		}
	}
	s, err := spec(control)
	if err != nil {
		return []string{"registry: not read: " + err.Error()}
	}
	ctx, cancel := context.WithTimeout(ctx, registryTimeout)
	defer cancel()
	st, err := openSpec(ctx, s, cfg.Cluster != nil)
	if err != nil {
		return []string{"registry: not read (the control pool's store did not answer): " + err.Error()}
	}
	specs, err := placement.RegisteredPools(ctx, st)
	if err != nil {
		return []string{"registry: not read: " + err.Error()}
	}
	var out []string
	for _, p := range specs {
		if !inConfig[p.Name] {
			out = append(out, fmt.Sprintf("%s (%s): registry (added through the admin API; opened at start)", p.Name, p.URI))
		}
	}
	return out
}

// redact returns a copy of c whose secrets read <redacted>.
func (c Config) redact() Config {
	hide := func(s *string) {
		if *s != "" {
			*s = redacted
		}
	}
	hide(&c.SignedURLSecret)
	hide(&c.Keystone.Password)
	hide(&c.Keystone.AppCredentialSecret)
	hide(&c.SMTP.Password)
	c.Pools = slices.Clone(c.Pools)
	for i := range c.Pools {
		hide(&c.Pools[i].Swift.Key)
		hide(&c.Pools[i].Swift.AuthToken)
		hide(&c.Pools[i].S3.SecretKey)
	}
	return c
}
