package main

import (
	"fmt"
	"strings"
	"testing"
)

func TestSubscriberAllow(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		env  map[string]string
		want string // the parsed prefixes, or the error's text
	}{
		{"default", nil, nil, "[]"},
		{"flag", []string{"-subscriber-allow", "127.0.0.0/8, 10.0.0.1"}, nil, "[127.0.0.0/8 10.0.0.1/32]"},
		{"env", nil, map[string]string{"CISTERN_SUBSCRIBER_ALLOW": "192.168.0.0/16"}, "[192.168.0.0/16]"},
		{"flag over env", []string{"-subscriber-allow", "::1"}, map[string]string{"CISTERN_SUBSCRIBER_ALLOW": "192.168.0.0/16"}, "[::1/128]"},
		{"bad", []string{"-subscriber-allow", "10.0.0.0/40"}, nil, "subscriber allow list"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := parseConfig(c.args, env(c.env))
			got := fmt.Sprint(cfg.subscriberAllow)
			if err != nil {
				got = err.Error()
			}
			if !strings.Contains(got, c.want) {
				t.Fatalf("got %s, want %s", got, c.want)
			}
		})
	}
}
