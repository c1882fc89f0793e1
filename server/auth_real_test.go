package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/messaging/v2/claims"
	"github.com/gophercloud/gophercloud/v2/openstack/messaging/v2/messages"
	"github.com/gophercloud/gophercloud/v2/openstack/messaging/v2/queues"
	"github.com/rs/zerolog"
)

// Tests against the real Keystone of scripts/keystone.sh and its fixture:
// users admin (role admin), alice (member of alpha) and bob (member of
// beta), the service user cistern (project service). Without
// CISTERN_KEYSTONE_URL they skip, or fail when CISTERN_REQUIRE_BACKENDS=1.

// realKeystone is the Keystone the environment names.
type realKeystone struct {
	url, password string
	svc           KeystoneOptions
}

func newRealKeystone(t *testing.T) *realKeystone {
	t.Helper()
	get := func(name string) string {
		v := os.Getenv(name)
		if v == "" {
			msg := name + " is not set: start Keystone with eval \"$(scripts/keystone.sh start)\""
			if os.Getenv("CISTERN_REQUIRE_BACKENDS") == "1" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
		return v
	}
	k := &realKeystone{url: get("CISTERN_KEYSTONE_URL"), password: get("CISTERN_KEYSTONE_PASSWORD")}
	k.svc = KeystoneOptions{URL: k.url, Username: get("CISTERN_KEYSTONE_USER"), Password: k.password,
		Project: get("CISTERN_KEYSTONE_PROJECT"), Logger: zerolog.Nop(),
		// Keystone's two workers queue requests behind the rest of the
		// suite on a loaded machine; the default 5 s bound is for
		// production, not for a shared CI box.
		Timeout: 30 * time.Second}
	return k
}

// token issues a project-scoped token for user (every fixture user's
// project is named below) and returns it with its project id.
func (k *realKeystone) token(t *testing.T, user string) (token, projectID string) {
	t.Helper()
	token, tb := k.tokenDoc(t, user)
	return token, tb.Token.Project.ID
}

// tokenDoc is token with Keystone's whole token document.
func (k *realKeystone) tokenDoc(t *testing.T, user string) (string, tokenBody) {
	t.Helper()
	project := map[string]string{"admin": "admin", "alice": "alpha", "bob": "beta", "cistern": "service"}[user]
	body := fmt.Sprintf(`{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":%q,"domain":{"name":"Default"},"password":%q}}},`+
		`"scope":{"project":{"name":%q,"domain":{"name":"Default"}}}}}`, user, k.password, project)
	st, data, h := k.call(t, "POST", "/auth/tokens?nocatalog", "", body)
	if st != http.StatusCreated {
		t.Fatalf("token for %s: %d %s", user, st, data)
	}
	var tb tokenBody
	if err := json.Unmarshal(data, &tb); err != nil || tb.Token.Project == nil {
		t.Fatalf("token document %s: %v", data, err)
	}
	return h.Get("X-Subject-Token"), tb
}

// call sends one request to Keystone; token "" sends none.
func (k *realKeystone) call(t *testing.T, method, path, token, body string, hdr ...string) (int, []byte, http.Header) {
	t.Helper()
	r, err := http.NewRequest(method, k.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/json")
	if token != "" {
		r.Header.Set("X-Auth-Token", token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return res.StatusCode, data, res.Header
}

// expiringToken is a real token of alice's that Keystone lets expire
// within seconds: Keystone caps the expiry of a token issued for an
// application credential at the credential's own expires_at, so the
// fixture's one-hour token expiration stays as it is for every other test.
// Eight seconds leave room for the token request on a loaded machine
// (password hashing takes a second there); the test calls waitExpired
// before using it.
func (k *realKeystone) expiringToken(t *testing.T) string {
	t.Helper()
	alice, tb := k.tokenDoc(t, "alice")
	uid := tb.Token.User.ID
	expires := time.Now().UTC().Add(8 * time.Second).Format("2006-01-02T15:04:05")
	body := fmt.Sprintf(`{"application_credential":{"name":"cistern-expiring-%d","expires_at":%q}}`, time.Now().UnixNano(), expires)
	st, data, _ := k.call(t, "POST", "/users/"+uid+"/application_credentials", alice, body)
	var ac struct {
		ApplicationCredential struct{ ID, Secret string } `json:"application_credential"`
	}
	if err := json.Unmarshal(data, &ac); st != http.StatusCreated || err != nil {
		t.Fatalf("create application credential: %d %s", st, data)
	}
	t.Cleanup(func() {
		k.call(t, "DELETE", "/users/"+uid+"/application_credentials/"+ac.ApplicationCredential.ID, alice, "")
	})
	body = fmt.Sprintf(`{"auth":{"identity":{"methods":["application_credential"],"application_credential":{"id":%q,"secret":%q}}}}`,
		ac.ApplicationCredential.ID, ac.ApplicationCredential.Secret)
	st, data, h := k.call(t, "POST", "/auth/tokens?nocatalog", "", body)
	if st != http.StatusCreated {
		t.Fatalf("token for the application credential: %d %s", st, data)
	}
	return h.Get("X-Subject-Token")
}

// waitExpired polls Keystone itself (never Cistern, which would cache the
// token while valid) until it refuses token as expired: 404 to the service
// user's validation.
func (k *realKeystone) waitExpired(t *testing.T, token string) {
	t.Helper()
	svc, _ := k.token(t, k.svc.Username)
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		st, data, _ := k.call(t, "GET", "/auth/tokens?nocatalog", svc, "", "X-Subject-Token", token)
		switch {
		case st == http.StatusNotFound:
			return
		case st != http.StatusOK:
			t.Fatalf("validating the expiring token: %d %s", st, data)
		case time.Now().After(deadline):
			t.Fatal("Keystone still honours the expiring token after 30 s")
		}
		<-tick.C
	}
}

// catalogRegion registers serverURL as the public endpoint of the catalog's
// messaging service in a region of its own, removed when the test ends, and
// returns the region: a client asking the catalog for messaging in that
// region finds this test's server, whatever port it listens on.
func (k *realKeystone) catalogRegion(t *testing.T, serverURL string) string {
	t.Helper()
	admin, _ := k.token(t, "admin")
	region := fmt.Sprintf("cistern-test-%d", time.Now().UnixNano())
	if st, data, _ := k.call(t, "POST", "/regions", admin, fmt.Sprintf(`{"region":{"id":%q}}`, region)); st != http.StatusCreated {
		t.Fatalf("create region: %d %s", st, data)
	}
	t.Cleanup(func() { k.call(t, "DELETE", "/regions/"+region, admin, "") })
	st, data, _ := k.call(t, "GET", "/services?type=messaging", admin, "")
	var svcs struct{ Services []struct{ ID string } }
	if err := json.Unmarshal(data, &svcs); st != http.StatusOK || err != nil || len(svcs.Services) == 0 {
		t.Fatalf("messaging service in the catalog: %d %s", st, data)
	}
	body := fmt.Sprintf(`{"endpoint":{"service_id":%q,"interface":"public","region_id":%q,"url":%q}}`, svcs.Services[0].ID, region, serverURL)
	st, data, _ = k.call(t, "POST", "/endpoints", admin, body)
	var ep struct{ Endpoint struct{ ID string } }
	if err := json.Unmarshal(data, &ep); st != http.StatusCreated || err != nil {
		t.Fatalf("create endpoint: %d %s", st, data)
	}
	t.Cleanup(func() { k.call(t, "DELETE", "/endpoints/"+ep.Endpoint.ID, admin, "") })
	return region
}

// offsetClock is the real time plus an offset the test moves forward, for
// cache lapses without waiting (Keystone's token expiries are real times).
type offsetClock struct{ off atomic.Int64 }

func (c *offsetClock) Now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *offsetClock) Advance(d time.Duration) { c.off.Add(int64(d)) }
func (k *realKeystone) server(t *testing.T, clk *offsetClock) (*env, *Keystone) {
	o := k.svc
	o.CacheTTL = time.Minute
	o.Clock = clk.Now
	return keystoneServer(t, o, nil)
}

// TestKeystoneRealCrossProject: with real tokens, every identity but alice
// is refused or sees its own empty project, whatever X-Project-ID it
// sends, and alice's queue is intact afterwards.
func TestKeystoneRealCrossProject(t *testing.T) {
	k := newRealKeystone(t)
	e, ks := k.server(t, &offsetClock{})
	expired := k.expiringToken(t) // expires while the queue is set up
	alice, alpha := k.token(t, "alice")
	bob, beta := k.token(t, "bob")
	admin, adminProject := k.token(t, "admin")

	e.must(as(alice, req{method: "PUT", path: "/v2/queues/secret"}), http.StatusCreated)
	var posted struct{ Resources []string }
	e.must(as(alice, req{method: "POST", path: "/v2/queues/secret/messages", body: `{"messages":[{"ttl":300,"body":"alpha-only"},{"ttl":300,"body":"two"}]}`}),
		http.StatusCreated).decode(t, &posted)
	msg := posted.Resources[0] // /v2/queues/secret/messages/<id>
	var share struct{ Project string }
	e.must(as(alice, req{method: "POST", path: "/v2/queues/secret/share", body: `{}`}), http.StatusOK).decode(t, &share)
	if share.Project != alpha {
		t.Fatalf("share signed for project %q, want alpha's id %s", share.Project, alpha)
	}

	routes := []req{
		{method: "GET", path: "/v2/queues"},
		{method: "GET", path: "/v2/queues/secret"},
		{method: "GET", path: "/v2/queues/secret/stats"},
		{method: "GET", path: "/v2/queues/secret/messages?echo=true&include_claimed=true"},
		{method: "GET", path: msg},
		{method: "POST", path: "/v2/queues/secret/claims", body: `{"ttl":60,"grace":60}`},
		{method: "DELETE", path: msg},
		{method: "DELETE", path: "/v2/queues/secret/messages?pop=1"},
		{method: "POST", path: "/v2/queues/secret/share", body: `{}`},
		{method: "POST", path: "/v2/queues/secret/purge", body: `{}`},
		{method: "PATCH", path: "/v2/queues/secret", body: `[{"op":"add","path":"/metadata/x","value":1}]`,
			header: map[string]string{"Content-Type": "application/openstack-messaging-v2.0-json-patch"}},
		{method: "DELETE", path: "/v2/queues/secret"},
	}
	type who struct {
		name, token, project string
		want                 int // 0: anything but alice's data
	}
	k.waitExpired(t, expired)
	for _, w := range []who{
		{"no token", "-", "-", http.StatusUnauthorized},
		{"bad token", "gAAAAAB-not-a-token", "-", http.StatusUnauthorized},
		{"bad token naming alpha", "gAAAAAB-not-a-token", alpha, http.StatusUnauthorized},
		{"alice's expired token", expired, "-", http.StatusUnauthorized},
		{"alice's expired token naming alpha", expired, alpha, http.StatusUnauthorized},
		{"bob naming alpha", bob, alpha, http.StatusForbidden},
		{"bob naming alpha by name", bob, "alpha", http.StatusForbidden},
		{"admin naming alpha", admin, alpha, http.StatusForbidden},
		{"bob", bob, "-", 0},
		{"bob naming beta", bob, beta, 0},
		{"admin", admin, adminProject, 0},
	} {
		for _, q := range routes {
			r := e.do(as(w.token, req{method: q.method, path: q.path, body: q.body,
				header: map[string]string{"X-Project-ID": w.project, "Content-Type": q.header["Content-Type"]}}))
			if w.want != 0 && r.status != w.want || strings.Contains(r.String(), "alpha-only") || r.status >= 500 {
				t.Errorf("%s: %s %s: %d %s", w.name, q.method, q.path, r.status, r.body)
			}
		}
	}
	var got struct{ Messages []struct{ Body any } }
	e.must(as(alice, req{method: "GET", path: "/v2/queues/secret/messages?echo=true"}), http.StatusOK).decode(t, &got)
	if len(got.Messages) != 2 {
		t.Fatalf("alice's queue after the others tried: %+v", got)
	}
	// one validation per token, however many requests
	if n := ks.Requests(); n > 9 {
		t.Errorf("%d Keystone requests for 5 tokens (and bad ones)", n)
	}
}

// TestKeystoneRealRequestsPer10000: the target against the real Keystone:
// 10,000 API requests from one client with one token, spread over 4
// minutes of the server's clock (default cache_ttl 5 min), show at most 2
// in cistern_keystone_requests_total.
func TestKeystoneRealRequestsPer10000(t *testing.T) {
	k := newRealKeystone(t)
	clk := &offsetClock{}
	o := k.svc
	o.Clock = clk.Now
	e, ks := keystoneServer(t, o, nil)
	alice, _ := k.token(t, "alice")
	e.must(as(alice, req{method: "PUT", path: "/v2/queues/busy"}), http.StatusCreated)
	hammer(t, e.srv.Handler(), alice, "busy", 10000-1, func() { clk.Advance(24 * time.Millisecond) })
	if n := keystoneRequestsMetric(t, e.srv.AdminHandler()); n > 2 || int64(n) != ks.Requests() {
		t.Errorf("cistern_keystone_requests_total %d (Requests() %d) after 10,000 API requests with one token, want at most 2", n, ks.Requests())
	}
}

// TestKeystoneRealAdminRole: the admin API on the public listener answers
// the admin role only.
func TestKeystoneRealAdminRole(t *testing.T) {
	k := newRealKeystone(t)
	e, _ := k.server(t, &offsetClock{})
	admin, _ := k.token(t, "admin")
	alice, _ := k.token(t, "alice")
	for _, path := range []string{"/v2/pools", "/v2/flavors", "/v2/health"} {
		e.must(as(admin, req{method: "GET", path: path}), http.StatusOK)
		e.must(as(alice, req{method: "GET", path: path}), http.StatusForbidden)
	}
}

// TestKeystoneRealRevoked: a token revoked in Keystone is refused once its
// cache entry lapses (CacheTTL, one minute here, moved by the clock).
func TestKeystoneRealRevoked(t *testing.T) {
	k := newRealKeystone(t)
	clk := &offsetClock{}
	e, _ := k.server(t, clk)
	tok, _ := k.token(t, "alice") // a token of its own: revoking it leaves others alone
	get := req{method: "GET", path: "/v2/queues"}
	e.must(as(tok, get), http.StatusOK)
	if st, data, _ := k.call(t, "DELETE", "/auth/tokens", tok, "", "X-Subject-Token", tok); st != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", st, data)
	}
	e.must(as(tok, get), http.StatusOK) // cached: the documented bound
	clk.Advance(time.Minute)
	r := e.must(as(tok, get), http.StatusUnauthorized)
	if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), `Keystone uri="`) {
		t.Fatalf("WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
	}
}

// TestKeystoneRealGophercloud: gophercloud authenticates as alice against
// Keystone, finds Cistern in the catalog (an endpoint the test registers in
// a region of its own, pointing at its server) and posts and claims.
func TestKeystoneRealGophercloud(t *testing.T) {
	k := newRealKeystone(t)
	e, _ := k.server(t, &offsetClock{})
	region := k.catalogRegion(t, e.url)

	ctx := context.Background()
	provider, err := openstack.AuthenticatedClient(ctx, gophercloud.AuthOptions{
		IdentityEndpoint: k.url, Username: "alice", Password: k.password, DomainName: "Default",
		Scope: &gophercloud.AuthScope{ProjectName: "alpha", DomainName: "Default"},
	})
	if err != nil {
		t.Fatal(err)
	}
	sc, err := openstack.NewMessagingV2(provider, clientA, gophercloud.EndpointOpts{Region: region})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(sc.Endpoint, e.url) {
		t.Fatalf("catalog endpoint %q, want this server %s", sc.Endpoint, e.url)
	}
	const qn = "gophercloud-keystone"
	check := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	check("create queue", queues.Create(ctx, sc, queues.CreateOpts{QueueName: qn, DefaultMessageTTL: 3600}).ExtractErr())
	_, err = messages.Create(ctx, sc, qn, messages.BatchCreateOpts{
		{TTL: 300, Body: map[string]any{"n": 1}}, {TTL: 300, Body: map[string]any{"n": 2}}}).Extract()
	check("post", err)
	claimed, err := claims.Create(ctx, sc, qn, claims.CreateOpts{TTL: 300, Grace: 60, Limit: 5}).Extract()
	check("claim", err)
	if len(claimed) != 2 {
		t.Fatalf("claimed %d messages, want 2", len(claimed))
	}
	for _, m := range claimed { // href: /v2/queues/q/messages/<id>?claim_id=<claim>
		u, err := url.Parse(m.Href)
		check("claimed href", err)
		check("delete claimed", messages.Delete(ctx, sc, qn, path.Base(u.Path),
			messages.DeleteOpts{ClaimID: u.Query().Get("claim_id")}).ExtractErr())
	}
	stats, err := queues.GetStats(ctx, sc, qn).Extract()
	check("stats", err)
	if stats.Total != 0 {
		t.Fatalf("stats after deleting the claimed messages: %+v", stats)
	}
	// the queue belongs to alice's project: bob's token does not see it
	bob, _ := k.token(t, "bob")
	r := e.must(as(bob, req{method: "GET", path: "/v2/queues"}), http.StatusOK)
	if bytes.Contains(r.body, []byte(qn)) {
		t.Fatalf("bob lists alice's queue: %s", r.body)
	}
}

// TestKeystoneRealOutage cuts the way to the real Keystone (a proxy in
// front of it drops every connection) while clients keep sending: cached
// tokens keep working, uncached ones get 503 with Retry-After, nothing is a
// 500; with the way back, the uncached token gets in without a restart.
func TestKeystoneRealOutage(t *testing.T) {
	k := newRealKeystone(t)
	target, err := url.Parse(k.url)
	if err != nil {
		t.Fatal(err)
	}
	var cut atomic.Bool
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: target.Scheme, Host: target.Host})
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if cut.Load() {
			if c, _, err := w.(http.Hijacker).Hijack(); err == nil {
				c.Close()
			}
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)
	o := k.svc
	o.URL = proxy.URL + target.Path
	e, _ := keystoneServer(t, o, nil)

	alice, _ := k.token(t, "alice")
	bob, _ := k.token(t, "bob")
	get := req{method: "GET", path: "/v2/queues"}
	e.must(as(alice, get), http.StatusOK)
	cut.Store(true)
	var wg sync.WaitGroup
	codes := make([][2]int, 8)
	for i := range codes {
		wg.Go(func() {
			codes[i] = [2]int{e.do(as(alice, get)).status, e.do(as(bob, get)).status}
		})
	}
	wg.Wait()
	for _, c := range codes {
		if c != [2]int{http.StatusOK, http.StatusServiceUnavailable} {
			t.Fatalf("during the outage (alice cached, bob not): %v", codes)
		}
	}
	r := e.must(as(bob, get), http.StatusServiceUnavailable)
	if r.header.Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
	cut.Store(false)
	e.must(as(bob, get), http.StatusOK)
}

// TestKeystoneRealApplicationCredential: the service user authenticates
// with an application credential instead of its password.
func TestKeystoneRealApplicationCredential(t *testing.T) {
	k := newRealKeystone(t)
	svc, tb := k.tokenDoc(t, k.svc.Username)
	body := fmt.Sprintf(`{"application_credential":{"name":"cistern-test-%d"}}`, time.Now().UnixNano())
	st, data, _ := k.call(t, "POST", "/users/"+tb.Token.User.ID+"/application_credentials", svc, body)
	var ac struct {
		ApplicationCredential struct{ ID, Secret string } `json:"application_credential"`
	}
	if err := json.Unmarshal(data, &ac); st != http.StatusCreated || err != nil {
		t.Fatalf("create application credential: %d %s", st, data)
	}
	t.Cleanup(func() {
		k.call(t, "DELETE", "/users/"+tb.Token.User.ID+"/application_credentials/"+ac.ApplicationCredential.ID, svc, "")
	})
	o := KeystoneOptions{URL: k.url, AppCredentialID: ac.ApplicationCredential.ID,
		AppCredentialSecret: ac.ApplicationCredential.Secret, Logger: zerolog.Nop()}
	e, _ := keystoneServer(t, o, nil)
	alice, _ := k.token(t, "alice")
	e.must(as(alice, req{method: "GET", path: "/v2/queues"}), http.StatusOK)
	e.must(as("gAAAAAB-not-a-token", req{method: "GET", path: "/v2/queues"}), http.StatusUnauthorized)
}
