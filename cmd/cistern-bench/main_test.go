package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cistern-mq/cistern/bench"
)

func noEnv(string) string { return "" }

// newServer is a stateless stand-in for Zaqar: queues come and go, posts
// succeed, claims find nothing, lists are empty. bench's own tests use a
// real fake; this one only has to let the command run.
func newServer(t *testing.T, failPUT bool) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPut && failPUT:
			w.WriteHeader(http.StatusInternalServerError)
		case r.Method == http.MethodPut:
			w.WriteHeader(http.StatusCreated)
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/messages"):
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`{"resources": []}`))
		case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/messages"):
			_, _ = w.Write([]byte(`{"messages": [], "links": []}`))
		default: // claims that find nothing, deletes
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestHelp(t *testing.T) {
	var stdout, stderr strings.Builder
	if code := run(t.Context(), []string{"-h"}, noEnv, &stdout, &stderr); code != 0 {
		t.Fatalf("-h exited %d", code)
	}
	for _, want := range []string{"Usage: cistern-bench", "Examples:", "-claim-grace", "-messages", "-pop", "-json", "cistern_store_requests_total", "CISTERN_BENCH_TOKEN"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("-h output lacks %q", want)
		}
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(t *testing.T, c configView)
	}{
		{"defaults", nil, nil, func(t *testing.T, c configView) {
			c.want(t, "url", c.URL, "http://127.0.0.1:8888")
			c.want(t, "metrics", c.MetricsURL, "http://127.0.0.1:8888/metrics")
			c.want(t, "duration", c.Duration, 10*time.Second)
			if !strings.HasPrefix(c.Prefix, "bench-") || len(c.Prefix) != len("bench-12345678-") {
				t.Errorf("prefix %q, want bench-<8 hex>-", c.Prefix)
			}
		}},
		{"messages caps the run at 5m", []string{"-messages", "1000"}, nil, func(t *testing.T, c configView) {
			c.want(t, "duration", c.Duration, messagesCap)
		}},
		{"messages with a duration", []string{"-messages", "1000", "-duration", "1m"}, nil, func(t *testing.T, c configView) {
			c.want(t, "duration", c.Duration, time.Minute)
		}},
		{"metrics follow the url", []string{"-url", "http://10.0.0.1:9000/"}, nil, func(t *testing.T, c configView) {
			c.want(t, "metrics", c.MetricsURL, "http://10.0.0.1:9000/metrics")
		}},
		{"metrics off", []string{"-metrics", "off"}, nil, func(t *testing.T, c configView) {
			c.want(t, "metrics", c.MetricsURL, "")
		}},
		{"everything", []string{"-project", "p", "-queues", "3", "-prefix", "x-", "-keep", "-producers", "4", "-consumers", "5",
			"-observers", "6", "-batch", "7", "-size", "8", "-ttl", "90", "-claim-limit", "9", "-claim-ttl", "70", "-claim-grace", "80",
			"-pop", "2", "-list-limit", "11", "-warmup", "2s", "-grace", "3s", "-empty-wait", "0s"},
			map[string]string{"CISTERN_BENCH_TOKEN": "tok"}, func(t *testing.T, c configView) {
				got := []any{c.Project, c.Queues, c.Prefix, c.Keep, c.Producers, c.Consumers, c.Observers, c.Batch, c.Size, c.TTL,
					c.ClaimLimit, c.ClaimTTL, c.ClaimGrace, c.Pop, c.ListLimit, c.Warmup, c.Grace, c.EmptyWait, c.Token}
				want := []any{"p", 3, "x-", true, 4, 5, 6, 7, 8, 90, 9, 70, 80, 2, 11, 2 * time.Second, 3 * time.Second, time.Duration(0), "tok"}
				for i := range want {
					if got[i] != want[i] {
						t.Errorf("field %d = %v, want %v", i, got[i], want[i])
					}
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr strings.Builder
			cfg, _, err := parseFlags(tt.args, func(k string) string { return tt.env[k] }, &stderr)
			if err != nil {
				t.Fatalf("parseFlags: %v", err)
			}
			tt.check(t, configView{cfg})
		})
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-producers", "-1"},
		{"-url", "127.0.0.1:8888"},
		{"-producers", "0", "-consumers", "0"},
		{"stray"},
		{"-no-such-flag"},
	} {
		var stdout, stderr strings.Builder
		if code := run(t.Context(), args, noEnv, &stdout, &stderr); code != 2 || stderr.Len() == 0 {
			t.Errorf("%q: exit %d, stderr %q; want 2 and a message", args, code, stderr.String())
		}
	}
}

func TestRun(t *testing.T) {
	srv := newServer(t, false)
	base := []string{"-url", srv.URL, "-duration", "100ms", "-observers", "1", "-metrics", "off"}

	var stdout, stderr strings.Builder
	if code := run(t.Context(), append(base, "-json", "-v"), noEnv, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var rep struct {
		Stopped string                     `json:"stopped"`
		Window  float64                    `json:"window_s"`
		Ops     map[string]json.RawMessage `json:"ops"`
		Config  struct {
			URL string `json:"url"`
		} `json:"config"`
	}
	if err := json.Unmarshal([]byte(stdout.String()), &rep); err != nil {
		t.Fatalf("-json output is not one JSON document: %v\n%s", err, stdout.String())
	}
	if rep.Stopped != "duration" || rep.Window <= 0 || rep.Config.URL != srv.URL || len(rep.Ops) != 4 {
		t.Errorf("report %+v", rep)
	}
	if !strings.Contains(stderr.String(), "measure") {
		t.Errorf("-v printed no phases: %q", stderr.String())
	}

	stdout.Reset()
	stderr.Reset()
	if code := run(t.Context(), base, noEnv, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if out := stdout.String(); !strings.Contains(out, "p99 ms") || !strings.Contains(out, "stopped by duration") {
		t.Errorf("table output:\n%s", out)
	}
}

func TestRunSetupFails(t *testing.T) {
	srv := newServer(t, true)
	var stdout, stderr strings.Builder
	code := run(t.Context(), []string{"-url", srv.URL, "-duration", "100ms", "-metrics", "off"}, noEnv, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "500") || stdout.Len() != 0 {
		t.Errorf("exit %d, stderr %q, stdout %q; want 1 and the 500", code, stderr.String(), stdout.String())
	}
}

// configView adds a comparison helper to the parsed config.
type configView struct{ bench.Config }

func (configView) want(t *testing.T, what string, got, want any) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}
