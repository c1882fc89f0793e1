package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/cistern-mq/cistern/drivers"
	"github.com/cistern-mq/cistern/drivers/memdriver"
	"github.com/cistern-mq/cistern/index"
	"github.com/cistern-mq/cistern/placement"
)

// adminEnv is a server over a placement router of mem pools, with the
// public and the admin handler each on its own httptest listener.
func adminEnv(t *testing.T) (public, admin string) {
	t.Helper()
	public, admin, _ = poolsEnv(t)
	return public, admin
}

// poolsEnv is adminEnv, with the stores by URI (pools a and b are open;
// mem:c is free for a pool to add).
func poolsEnv(t *testing.T) (public, admin string, stores map[string]*memdriver.Store) {
	t.Helper()
	return poolsEnvLog(t, zerolog.Nop())
}

// poolsEnvLog is poolsEnv with the server logging to log.
func poolsEnvLog(t *testing.T, log zerolog.Logger) (public, admin string, stores map[string]*memdriver.Store) {
	t.Helper()
	stores = map[string]*memdriver.Store{"mem:a": memdriver.New(), "mem:b": memdriver.New(), "mem:c": memdriver.New()}
	r, err := placement.Open(context.Background(), placement.Options{
		Pools: []placement.PoolSpec{{Name: "a", URI: "mem:a", Weight: 100}, {Name: "b", URI: "mem:b", Weight: 100}},
		Open: func(_ context.Context, s placement.PoolSpec) (drivers.Store, error) {
			st, ok := stores[s.URI]
			if !ok {
				return nil, fmt.Errorf("no store at %s", s.URI)
			}
			return st, nil
		},
		NewEngine: func(ctx context.Context, _ string, s drivers.Store) (*index.Engine, error) {
			return index.Open(ctx, index.Options{Store: s, Logger: zerolog.Nop(), NoJanitor: true})
		},
		Logger:   zerolog.Nop(),
		URIAllow: []string{placement.AllowAnyURI}, // these tests reach the stores' own refusals
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	srv, err := New(Options{Engine: r, Pools: r, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	p := httptest.NewServer(srv.Handler())
	a := httptest.NewServer(srv.AdminHandler())
	t.Cleanup(p.Close)
	t.Cleanup(a.Close)
	return p.URL, a.URL, stores
}

func call(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, url, r)
	req.Header.Set("Client-ID", clientA)
	req.Header.Set("X-Project-ID", project)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

func TestAdminAPI(t *testing.T) {
	public, admin := adminEnv(t)
	steps := []struct {
		name, method, url, body string
		status                  int
		contains                string
	}{
		{"public has no pools", "GET", public + "/v2/pools", "", 404, ""},
		{"list pools", "GET", admin + "/v2/pools", "", 200, `"name":"a"`},
		{"get pool", "GET", admin + "/v2/pools/b?detailed=true", "", 200, `"options":{}`},
		{"missing pool", "GET", admin + "/v2/pools/zz", "", 404, "pool does not exist"},
		{"put needs uri and weight", "PUT", admin + "/v2/pools/c", `{"weight":10}`, 400, "required"},
		{"unknown field", "PUT", admin + "/v2/pools/c", `{"weight":10,"uri":"mem:c","color":1}`, 400, "unknown field"},
		{"unreachable pool", "PUT", admin + "/v2/pools/x", `{"weight":10,"uri":"mem:nowhere"}`, 400, "cannot be opened"},
		{"add pool", "PUT", admin + "/v2/pools/c", `{"weight":10,"uri":"mem:c"}`, 201, ""},
		{"patch pool", "PATCH", admin + "/v2/pools/c", `{"weight":50}`, 200, `"weight":50`},
		{"patch nothing", "PATCH", admin + "/v2/pools/c", `{}`, 400, "needs to be specified"},
		{"flavor of unknown pool", "PUT", admin + "/v2/flavors/gold", `{"pool_list":["zz"]}`, 400, "pool does not exist"},
		{"add flavor", "PUT", admin + "/v2/flavors/gold", `{"pool_list":["c"]}`, 201, ""},
		{"get flavor", "GET", admin + "/v2/flavors/gold", "", 200, `"pool_list":["c"]`},
		{"list flavors", "GET", admin + "/v2/flavors", "", 200, `"name":"gold"`},
		{"pool joins the flavor", "GET", admin + "/v2/pools/c", "", 200, `"flavor":"gold"`},
		{"queue of the flavor", "PUT", public + "/v2/queues/orders", `{"_flavor":"gold"}`, 201, ""},
		{"queue of no such flavor", "PUT", public + "/v2/queues/other", `{"_flavor":"silver"}`, 400, "flavor does not exist"},
		{"post", "POST", public + "/v2/queues/orders/messages", `{"messages":[{"body":1}]}`, 201, ""},
		{"pool in use", "DELETE", admin + "/v2/pools/c", "", 409, "still holds queues"},
		{"migrate one queue", "POST", admin + "/v2/migrations", fmt.Sprintf(`{"project":%q,"queue":"orders","pool":"a"}`, project), 202, `"running":true`},
	}
	for _, s := range steps {
		code, body := call(t, s.method, s.url, s.body)
		if code != s.status || !strings.Contains(body, s.contains) {
			t.Fatalf("%s: %s %s = %d %s; want %d containing %q", s.name, s.method, s.url, code, body, s.status, s.contains)
		}
	}
	// The migration runs in the background: poll its status.
	var st placement.MigrationStatus
	for range 1000 {
		_, body := call(t, "GET", admin+"/v2/migrations", "")
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			t.Fatal(err)
		}
		if !st.Running {
			break
		}
	}
	if st.Running || st.Done != 1 || st.Failed != 0 {
		t.Fatalf("migration status %+v", st)
	}
	if code, body := call(t, "GET", public+"/v2/queues/orders/messages?echo=true", ""); code != 200 || !strings.Contains(body, `"body":1`) {
		t.Fatalf("after migration: %d %s", code, body)
	}
	// Pool c is empty now: it can go, and its flavor loses it.
	if code, body := call(t, "DELETE", admin+"/v2/flavors/gold", ""); code != 204 {
		t.Fatalf("delete flavor: %d %s", code, body)
	}
	if code, body := call(t, "DELETE", admin+"/v2/pools/c", ""); code != 204 {
		t.Fatalf("delete empty pool: %d %s", code, body)
	}
}

// Every credential in a pool's options is hidden from the admin API and
// its logs, whatever the driver calls it.
func TestRedactOptions(t *testing.T) {
	in := `{"auth_url":"http://a","user":"u","key":"k","password":"p","application_credential_secret":"s",` +
		`"access_key":"ak","secret_key":"sk","auth_token":"t","container_prefix":"c"}`
	var got map[string]string
	if err := json.Unmarshal(redactOptions(json.RawMessage(in)), &got); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"key", "password", "application_credential_secret", "access_key", "secret_key", "auth_token"} {
		if got[k] != "***" {
			t.Errorf("%s = %q, want it hidden", k, got[k])
		}
	}
	for _, k := range []string{"auth_url", "user", "container_prefix"} {
		if got[k] == "***" {
			t.Errorf("%s hidden, want it shown", k)
		}
	}
}
