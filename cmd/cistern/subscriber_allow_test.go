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

func TestRequireConfirmationNeedsSecret(t *testing.T) {
	if _, err := parseConfig([]string{"-require-confirmation"}, env(nil)); err == nil || !strings.Contains(err.Error(), "signed-URL secret") {
		t.Fatalf("err = %v", err)
	}
	cfg, err := parseConfig([]string{"-require-confirmation"}, env(map[string]string{"CISTERN_SIGNED_URL_SECRET": "s"}))
	if err != nil || !cfg.RequireConfirmation {
		t.Fatalf("cfg %v err %v", cfg.RequireConfirmation, err)
	}
}
