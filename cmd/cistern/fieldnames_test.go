package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cistern-mq/cistern/drivers"
)

// TestPoolErrorsNameConfigKeys: a pool of the configuration file that the
// driver refuses is reported in the file's keys, not the Go fields.
func TestPoolErrorsNameConfigKeys(t *testing.T) {
	for _, c := range []struct{ yaml, want, not string }{
		{"pools:\n  - name: sw\n    kind: swift\n    swift: {}\n", "auth_url, user and key, or storage_url and auth_token", "AuthURL"},
		{"pools:\n  - name: s\n    kind: s3\n    s3: {key_prefix: abc}\n", "bucket", "Bucket"},
	} {
		path := filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(path, []byte(c.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := parseConfig([]string{"-config", path}, func(string) string { return "" })
		_ = cfg
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), c.not) {
			t.Errorf("%q: %v; want it to say %q and not %q", c.yaml, err, c.want, c.not)
		}
		if err != nil && !errors.Is(err, drivers.ErrInvalid) {
			t.Errorf("%q: %v no longer matches drivers.ErrInvalid", c.yaml, err)
		}
	}
}
