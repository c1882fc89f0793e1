package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfigKeystone(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	yaml := `auth_strategy: keystone
keystone:
  url: http://127.0.0.1:5000/v3
  username: cistern
  password: from-file
  project: service
  admin_role: cloud-admin
  cache_ttl: 30s
`
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	scriptEnv := map[string]string{ // as scripts/keystone.sh start prints it
		"CISTERN_AUTH_STRATEGY": "keystone", "CISTERN_KEYSTONE_URL": "http://127.0.0.1:18535/v3",
		"CISTERN_KEYSTONE_USER": "cistern", "CISTERN_KEYSTONE_PASSWORD": "secret", "CISTERN_KEYSTONE_PROJECT": "service",
		"CISTERN_KEYSTONE_USER_DOMAIN": "Default", "CISTERN_KEYSTONE_PROJECT_DOMAIN": "Default",
	}
	cfg, err := parseConfig(nil, env(scriptEnv))
	if err != nil {
		t.Fatal(err)
	}
	if k := cfg.Keystone; cfg.AuthStrategy != "keystone" || k.URL != "http://127.0.0.1:18535/v3" || k.Username != "cistern" ||
		k.Password != "secret" || k.Project != "service" || k.UserDomain != "Default" {
		t.Fatalf("from the environment: %+v", cfg)
	}
	cfg, err = parseConfig([]string{"-config", file}, env(map[string]string{"CISTERN_KEYSTONE_PASSWORD": "from-env"}))
	if err != nil {
		t.Fatal(err)
	}
	if k := cfg.Keystone; k.Password != "from-env" || k.AdminRole != "cloud-admin" || k.CacheTTL != 30*time.Second {
		t.Fatalf("from the file: %+v", k)
	}
	for _, c := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"keystone without url", []string{"-auth-strategy", "keystone"}, nil, "URL is required"},
		{"keystone without password", nil, map[string]string{"CISTERN_AUTH_STRATEGY": "keystone",
			"CISTERN_KEYSTONE_URL": "http://k/v3", "CISTERN_KEYSTONE_USER": "u", "CISTERN_KEYSTONE_PROJECT": "p"}, "password"},
		{"unknown strategy", []string{"-auth-strategy", "basic"}, nil, "want noauth or keystone"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := parseConfig(c.args, env(c.env)); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one containing %q", err, c.want)
			}
		})
	}
}
