package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestConfigDefaults(t *testing.T) {
	cfg, err := parseConfig(nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:8888" || len(cfg.Pools) != 1 || cfg.Pools[0].Kind != "fs" || cfg.Pools[0].Path != "cistern-data" {
		t.Fatalf("defaults = %+v", cfg)
	}
}

func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	yaml := `listen: 127.0.0.1:7000
log_level: debug
pools:
  - name: local
    kind: fs
    path: /from/file
engine:
  snapshot_logs: 64
`
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name       string
		args       []string
		env        map[string]string
		listen     string
		path       string
		wantErrSub string
	}{
		{"file", []string{"-config", file}, nil, "127.0.0.1:7000", "/from/file", ""},
		{"env over file", []string{"-config", file}, map[string]string{"CISTERN_LISTEN": "127.0.0.1:7001", "CISTERN_DATA": "/from/env"}, "127.0.0.1:7001", "/from/env", ""},
		{"flags over env", []string{"-config", file, "-listen", "127.0.0.1:7002", "-data", "/from/flag"}, map[string]string{"CISTERN_LISTEN": "127.0.0.1:7001"}, "127.0.0.1:7002", "/from/flag", ""},
		{"config from env", nil, map[string]string{"CISTERN_CONFIG": file}, "127.0.0.1:7000", "/from/file", ""},
		{"unknown driver", []string{"-driver", "ftp"}, nil, "", "", "want fs, swift or s3"},
		{"swift without url", []string{"-driver", "swift"}, nil, "", "", "-swift-auth-url / CISTERN_SWIFT_AUTH_URL"},
		{"stray argument", []string{"serve"}, nil, "", "", "unexpected"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parseConfig(tc.args, env(tc.env))
			if tc.wantErrSub != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErrSub) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErrSub)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Listen != tc.listen || cfg.Pools[0].Path != tc.path {
				t.Errorf("listen %q path %q, want %q %q", cfg.Listen, cfg.Pools[0].Path, tc.listen, tc.path)
			}
		})
	}
}

func TestConfigUnknownKey(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(file, []byte("listen: 127.0.0.1:1\nlisten_typo: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := parseConfig([]string{"-config", file}, env(nil)); err == nil || !strings.Contains(err.Error(), "listen_typo") {
		t.Fatalf("err = %v, want it to name the unknown key", err)
	}
}

// TestDriverMissingSettings: -driver swift without credentials named the
// driver's Go fields (AuthURL, User, Key), which no operator can set; the
// error names the flags and their variables.
func TestDriverMissingSettings(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"-driver", "swift"}, nil,
			"-swift-auth-url / CISTERN_SWIFT_AUTH_URL, -swift-user / CISTERN_SWIFT_USER, -swift-key / CISTERN_SWIFT_KEY are required with -driver swift"},
		{[]string{"-driver", "swift", "-swift-auth-url", "http://127.0.0.1:8080/auth/v1.0", "-swift-user", "a:b"}, nil,
			"-swift-key / CISTERN_SWIFT_KEY is required with -driver swift"},
		{[]string{"-driver", "s3", "-s3-access-key", "AK"}, nil,
			"-s3-access-key / CISTERN_S3_ACCESS_KEY and -s3-secret-key / CISTERN_S3_SECRET_KEY go together"},
	} {
		_, err := parseConfig(tc.args, env(tc.env))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
	cfg, err := parseConfig([]string{"-driver", "swift", "-swift-user", "a:b"},
		env(map[string]string{"CISTERN_SWIFT_AUTH_URL": "http://127.0.0.1:8080/auth/v1.0", "CISTERN_SWIFT_KEY": "k"}))
	if err != nil || cfg.Pools[0].Swift.Key != "k" {
		t.Errorf("variables and flags together: %v", err)
	}
}

// TestConfigSMTP: the smtp address comes from the file, CISTERN_SMTP or
// -smtp, and an smtp setting that could not send is refused at start.
func TestConfigSMTP(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(file, []byte("smtp:\n  address: mail.example.com:25\n  from: Queues <queues@example.com>\n  user: u\n  password: p\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		args    []string
		env     map[string]string
		addr    string
		wantErr string
	}{
		{"file", []string{"-config", file}, nil, "mail.example.com:25", ""},
		{"env over file", []string{"-config", file}, map[string]string{"CISTERN_SMTP": "127.0.0.1:2525"}, "127.0.0.1:2525", ""},
		{"flag over env", []string{"-config", file, "-smtp", "127.0.0.1:2526"}, map[string]string{"CISTERN_SMTP": "127.0.0.1:2525"}, "127.0.0.1:2526", ""},
		{"none", nil, nil, "", ""},
		{"no from", []string{"-smtp", "127.0.0.1:25"}, nil, "", "smtp from address"},
		{"no port", []string{"-config", file, "-smtp", "mail.example.com"}, nil, "", "want host:port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parseConfig(tc.args, env(tc.env))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			mo := cfg.SMTP.Options()
			if tc.addr == "" {
				if mo != nil {
					t.Fatalf("mail options %+v without an address", mo)
				}
				return
			}
			if mo == nil || mo.Addr != tc.addr || mo.From != "Queues <queues@example.com>" || mo.User != "u" {
				t.Fatalf("mail options %+v", mo)
			}
			if got := cfg.redact().SMTP.Password; got != redacted {
				t.Fatalf("check-config shows the smtp password as %q", got)
			}
		})
	}
}
