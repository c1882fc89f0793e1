package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// get answers a bare GET (no Zaqar headers, as Prometheus sends it).
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestMetricsListen: /metrics is served on the admin listener and on
// metrics_listen, not on the public listener unless metrics_listen is
// "public"; -request-timeout and CISTERN_REQUEST_TIMEOUT set the deadline.
func TestMetricsListen(t *testing.T) {
	cfg := testConfig(t, "-data", t.TempDir(), "-admin-listen", "127.0.0.1:0", "-metrics-listen", "127.0.0.1:0")
	d, _ := serve(t, cfg)
	public := "http://" + d.addr()
	if code, _ := get(t, public+"/metrics"); code != 404 {
		t.Errorf("public /metrics %d, want 404", code)
	}
	for _, base := range []string{"http://" + d.adminL.Addr().String(), "http://" + d.metricsL.Addr().String()} {
		if code, body := get(t, base+"/metrics"); code != 200 || !strings.Contains(body, `cistern_pool_up{pool="default"} 1`) {
			t.Errorf("%s/metrics %d, want 200 with cistern_pool_up", base, code)
		}
	}
	if code, _ := get(t, public+"/readyz"); code != 204 {
		t.Errorf("public /readyz %d, want 204", code)
	}

	cfg = testConfig(t, "-data", t.TempDir(), "-metrics-listen", "public")
	d, _ = serve(t, cfg)
	if code, _ := get(t, "http://"+d.addr()+"/metrics"); code != 200 {
		t.Errorf("metrics_listen public: /metrics %d, want 200", code)
	}
	if d.metricsL != nil {
		t.Error("metrics_listen public opened a listener of its own")
	}

	if cfg.RequestTimeout != 10*time.Second {
		t.Errorf("default request_timeout %s, want 10s", cfg.RequestTimeout)
	}
	env := map[string]string{"CISTERN_REQUEST_TIMEOUT": "3s"}
	cfg, err := parseConfig([]string{"-data", t.TempDir()}, func(k string) string { return env[k] })
	if err != nil || cfg.RequestTimeout != 3*time.Second {
		t.Errorf("CISTERN_REQUEST_TIMEOUT 3s: %s %v", cfg.RequestTimeout, err)
	}
	if cfg, err = parseConfig([]string{"-data", t.TempDir(), "-request-timeout", "2s"}, func(k string) string { return env[k] }); err != nil || cfg.RequestTimeout != 2*time.Second {
		t.Errorf("-request-timeout 2s over the variable: %s %v", cfg.RequestTimeout, err)
	}
}

// TestQueueDepthSeries: each queue in use has its depth and the age of its
// oldest message on /metrics.
func TestQueueDepthSeries(t *testing.T) {
	cfg := testConfig(t, "-data", t.TempDir(), "-admin-listen", "127.0.0.1:0")
	d, _ := serve(t, cfg)
	req, _ := http.NewRequest("POST", "http://"+d.addr()+"/v2/queues/deep/messages",
		strings.NewReader(`{"messages": [{"body": 1, "ttl": 300}, {"body": 2, "ttl": 300}]}`))
	req.Header.Set("Client-ID", "3381af92-2b9e-11e3-b191-71861300734c")
	req.Header.Set("X-Project-ID", "proj")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("post: %d", resp.StatusCode)
	}
	_, body := get(t, "http://"+d.adminL.Addr().String()+"/metrics")
	if !strings.Contains(body, `cistern_queue_depth{pool="default",project="proj",queue="deep"} 2`) ||
		!strings.Contains(body, `cistern_queue_oldest_message_age_seconds{pool="default",project="proj",queue="deep"}`) {
		t.Fatalf("no per-queue series for the queue:\n%s", grepLines(body, "cistern_queue_"))
	}
	// The post went through the node's journal and is not folded yet.
	if !strings.Contains(body, `cistern_journal_objects{pool="default"} 1`) ||
		!strings.Contains(body, `cistern_journal_unfolded_batches{pool="default"} 1`) {
		t.Errorf("journal series:\n%s", grepLines(body, "cistern_journal_"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
