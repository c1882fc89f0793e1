package bench

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
		want   string // in the error; empty for a valid config
	}{
		{"default", func(*Config) {}, ""},
		{"observers only", func(c *Config) { c.Producers, c.Consumers, c.Observers = 0, 0, 3 }, ""},
		{"bad url", func(c *Config) { c.URL = "127.0.0.1:8888" }, "url"},
		{"no project", func(c *Config) { c.Project = "" }, "project"},
		{"no queues", func(c *Config) { c.Queues = 0 }, "queues"},
		{"bad prefix", func(c *Config) { c.Prefix = "a/b" }, "prefix"},
		{"long prefix", func(c *Config) { c.Prefix = strings.Repeat("p", 64) }, "prefix"},
		{"no workers", func(c *Config) { c.Producers, c.Consumers = 0, 0 }, "no workers"},
		{"batch", func(c *Config) { c.Batch = 0 }, "batch"},
		{"size", func(c *Config) { c.Size = 0 }, "size"},
		{"claim limit", func(c *Config) { c.ClaimLimit = 0 }, "claim-limit"},
		{"duration", func(c *Config) { c.Duration = 0 }, "duration"},
		{"grace", func(c *Config) { c.Grace = 0 }, "grace"},
		{"messages without producers or consumers", func(c *Config) { c.Producers, c.Consumers, c.Observers, c.Messages = 0, 0, 1, 10 }, "messages"},
		{"metrics url", func(c *Config) { c.MetricsURL = "::" }, "metrics"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.change(&c)
			err := c.Validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Validate() = %v, want an error about %q", err, tt.want)
			}
		})
	}
}

func TestConfigJSON(t *testing.T) {
	c := DefaultConfig()
	c.Token = "hush"
	c.Warmup = 1500 * time.Millisecond
	raw, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if m["warmup_s"] != 1.5 || m["duration_s"] != 10.0 || m["url"] != c.URL {
		t.Errorf("config JSON %s", raw)
	}
	if strings.Contains(string(raw), "hush") || strings.Contains(string(raw), "Progress") {
		t.Errorf("config JSON shows the token or the hook: %s", raw)
	}
}
