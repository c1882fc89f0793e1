package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPoolTimeoutOneFormat: a pool's timeout was "60s" in the config file
// but nanoseconds in the admin API's options ("60s" there was refused). It
// is a duration string in both, and registry entries holding a number of
// nanoseconds still read.
func TestPoolTimeoutOneFormat(t *testing.T) {
	for _, tc := range []struct{ opts, err string }{
		{`{"timeout": "60s"}`, ""},
		{`{"timeout": "1m"}`, ""},
		{`{"timeout": 60000000000}`, ""},
		{`{"timeout": "sixty"}`, `want a Go duration such as "60s"`},
		{`{"timeout": true}`, `want a Go duration such as "60s"`},
	} {
		var sc SwiftConfig
		err := decodeOptions([]byte(tc.opts), &sc)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: %v, want %q", tc.opts, err, tc.err)
		case tc.err == "" && (err != nil || time.Duration(sc.Timeout) != time.Minute):
			t.Errorf("%s: %v %v, want 1m0s", tc.opts, err, time.Duration(sc.Timeout))
		}
		var s3 S3Config
		if err := decodeOptions([]byte(tc.opts), &s3); (err == nil) != (tc.err == "") {
			t.Errorf("s3 %s: %v", tc.opts, err)
		}
	}

	// The file's "60s" reaches the registry as "1m0s", the same format.
	file := filepath.Join(t.TempDir(), "c.yaml")
	yml := "pools:\n  - name: s\n    kind: swift\n    swift: {auth_url: 'http://127.0.0.1:8080/auth/v1.0', user: 'a:b', key: k, timeout: 60s}\n"
	if err := os.WriteFile(file, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := parseConfig([]string{"-config", file}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := time.Duration(cfg.Pools[0].Swift.Timeout); got != time.Minute {
		t.Fatalf("yaml timeout: %v", got)
	}
	sp, err := spec(cfg.Pools[0])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(sp.Options), `"timeout":"1m0s"`) {
		t.Errorf("registry options %s, want \"timeout\":\"1m0s\"", sp.Options)
	}
}
