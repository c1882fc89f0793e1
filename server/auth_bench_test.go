package server

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cistern-mq/cistern/index/enginetest"
)

// BenchmarkKeystoneWarmVsNoauth measures what Keystone auth costs once the
// token cache is warm: one client does post + claim + delete cycles (1 KiB
// bodies) on the fs driver against two servers in the same run, one with
// noauth and one validating its token against a Keystone fake, alternating
// between them every iteration so that both see the same machine load. It
// reports each side's requests/s and their ratio, keystone/noauth; the
// target is at least 0.95 (docs/performance.md).
func BenchmarkKeystoneWarmVsNoauth(b *testing.B) {
	noauth := newEnv(b, envOpts{real: true})
	clk := enginetest.NewClock() // the fake's token expiries and the cache's clock: never moved
	fk := newFakeKeystone(b, clk)
	fk.issue("tok-demo", project, "member")
	ks, err := NewKeystone(KeystoneOptions{URL: fk.url, Username: "cistern", Password: "pw", Project: "service",
		Clock: clk.Now, Logger: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	keystone := newEnv(b, envOpts{real: true, server: func(o *Options) { o.Keystone = ks }})

	body := `{"messages":[{"ttl":3600,"body":"` + strings.Repeat("x", 1024) + `"}]}`
	cycle := func(e *env, token string) {
		h := map[string]string{"X-Auth-Token": token, "X-Project-ID": project}
		e.must(req{method: "POST", path: "/v2/queues/bench/messages", body: body, header: h}, http.StatusCreated)
		var claimed struct{ Messages []struct{ Href string } }
		e.must(req{method: "POST", path: "/v2/queues/bench/claims?limit=1", body: `{"ttl":60,"grace":60}`, header: h},
			http.StatusCreated).decode(b, &claimed)
		if len(claimed.Messages) != 1 {
			b.Fatalf("claimed %d messages, want 1", len(claimed.Messages))
		}
		e.must(req{method: "DELETE", path: claimed.Messages[0].Href, header: h}, http.StatusNoContent)
	}
	envs := [2]*env{noauth, keystone}
	tokens := [2]string{"-", "tok-demo"}
	for i, e := range envs {
		e.must(req{method: "PUT", path: "/v2/queues/bench", header: map[string]string{"X-Auth-Token": tokens[i]}}, http.StatusCreated)
		cycle(e, tokens[i]) // warms the token cache, the connection and the queue
	}
	var spent [2]time.Duration
	b.ResetTimer()
	for i := range b.N {
		for k := range 2 {
			j := (i + k) % 2 // each goes first every other iteration
			start := time.Now()
			cycle(envs[j], tokens[j])
			spent[j] += time.Since(start)
		}
	}
	b.StopTimer()
	const perCycle = 3 // requests
	rate := func(d time.Duration) float64 { return float64(perCycle*b.N) / d.Seconds() }
	b.ReportMetric(rate(spent[0]), "noauth-req/s")
	b.ReportMetric(rate(spent[1]), "keystone-req/s")
	b.ReportMetric(rate(spent[1])/rate(spent[0]), "keystone/noauth")
	if n := fk.validate.Load(); n != 1 {
		b.Fatalf("%d validations: the cache was not warm", n)
	}
}
