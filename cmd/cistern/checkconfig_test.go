package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckConfig: -check-config prints the merged configuration with
// secrets redacted and where each pool came from (file, flags, registry),
// with the warnings start-up would log, and exits 0; an invalid one exits
// 1 with the error.
func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "one")
	cfg := testConfig(t, "-data", data, "-admin-listen", "127.0.0.1:0")
	cfg.PoolURIAllow = []string{"file://" + dir}
	d, stop := serve(t, cfg)
	admin := &client{base: "http://" + d.adminL.Addr().String(), id: "00000000-0000-4000-8000-000000000001", project: "admin", http: http.DefaultClient}
	if code, body, _ := admin.do("PUT", "/v2/pools/two", map[string]any{"uri": "file://" + filepath.Join(dir, "two"), "weight": 100}); code != http.StatusCreated {
		t.Fatalf("PUT pool: %d %s", code, body)
	}
	stop()

	file := filepath.Join(dir, "cistern.yaml")
	yml := "pools:\n  - name: main\n    kind: fs\n    path: " + data + "\n  - name: s\n    kind: swift\n    swift: {auth_url: 'http://127.0.0.1:1/auth/v1.0', user: 'a:b', key: hush-swift-key}\n"
	if err := os.WriteFile(file, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"CISTERN_S3_SECRET_KEY": "hush-s3", "CISTERN_SIGNED_URL_SECRET": "hush-signing"}
	getenv := func(k string) string { return env[k] }
	var out strings.Builder
	if code := checkConfig(t.Context(), []string{"-check-config", "-config", file}, getenv, &out); code != 0 {
		t.Fatalf("check-config of a valid file: %d\n%s", code, &out)
	}
	got := out.String()
	for _, want := range []string{
		"main (fs): file " + file, "s (swift): file " + file, "two (file://", "): registry",
		"signed_url_secret: <redacted>", "key: <redacted>", "request_timeout: 10s",
		"warning: CISTERN_S3_SECRET_KEY is ignored: the config file names pools",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("check-config lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "hush") {
		t.Errorf("check-config shows a secret:\n%s", got)
	}

	out.Reset()
	if code := checkConfig(t.Context(), []string{"-check-config", "-config", file, "-driver", "fs", "-data", data}, getenv, &out); code != 0 ||
		!strings.Contains(out.String(), "default (fs): flags (-driver)") || !strings.Contains(out.String(), "-driver fs replaces the 2 pool(s) of "+file) {
		t.Errorf("check-config with -driver over a file's pools: %d\n%s", code, &out)
	}

	out.Reset()
	if code := checkConfig(t.Context(), []string{"-check-config", "-log-level", "loud"}, getenv, &out); code != 1 || !strings.Contains(out.String(), `log level "loud"`) {
		t.Errorf("check-config of an invalid configuration: %d %s, want 1 with the error", code, &out)
	}
	if !checkConfigWanted([]string{"-config", "x", "-check-config"}) || checkConfigWanted([]string{"-config", "x"}) {
		t.Error("checkConfigWanted")
	}
}

// TestVersionFlag: -version is answered before any configuration is read,
// and the version names something.
func TestVersionFlag(t *testing.T) {
	if _, err := parseConfig([]string{"-version", "-log-level", "loud"}, func(string) string { return "" }); err != errVersion {
		t.Errorf("-version: %v, want errVersion", err)
	}
	if v := buildVersion(); v == "" || v == "unknown" {
		t.Errorf("buildVersion %q", v)
	}
}

// TestIgnoredDriverSettingsWarn: every driver flag or variable that builds
// nothing is named in a start-up warning, and none that is used.
func TestIgnoredDriverSettingsWarn(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(file, []byte("pools:\n  - {name: a, kind: fs, path: "+t.TempDir()+"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		args []string
		env  map[string]string
		want []string
	}{
		{"file pools ignore swift variables", []string{"-config", file}, map[string]string{"CISTERN_SWIFT_AUTH_URL": "http://s"},
			[]string{"CISTERN_SWIFT_AUTH_URL is ignored: the config file names pools and -driver is not given"}},
		{"no -driver ignores -s3 flags", []string{"-s3-bucket", "b"}, nil,
			[]string{"-s3-bucket is ignored: -driver is not given, so the one pool is fs"}},
		{"-driver swift uses its own, ignores s3", []string{"-driver", "swift", "-swift-auth-url", "http://s/auth/v1.0", "-swift-user", "a:b", "-swift-key", "k"},
			map[string]string{"CISTERN_S3_BUCKET": "b", "CISTERN_SWIFT_PROJECT": "p"},
			[]string{"CISTERN_S3_BUCKET is ignored: -driver is swift"}},
		{"-driver over file pools", []string{"-config", file, "-driver", "fs", "-data", t.TempDir()}, nil,
			[]string{"-driver fs replaces the 1 pool(s) of " + file + ": serving one pool, default, built from the flags"}},
		{"nothing to say", []string{"-data", t.TempDir()}, nil, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := parseConfig(c.args, func(k string) string { return c.env[k] })
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(cfg.warnings, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("warnings %q, want %q", cfg.warnings, c.want)
			}
		})
	}
}
