package server

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/rs/zerolog"

	"github.com/cistern-mq/cistern/drivers"
	"github.com/cistern-mq/cistern/drivers/memdriver"
	"github.com/cistern-mq/cistern/index"
	"github.com/cistern-mq/cistern/placement"
)

// TestAdminChangesRefusedInClusterMode: pools, flavors and migrations come
// from every node's configuration in cluster mode; the admin API says so
// with a 409, not a 500 or a silent change only one node sees.
func TestAdminChangesRefusedInClusterMode(t *testing.T) {
	r := memRouter(t, true)
	srv, err := New(Options{Engine: r, Pools: r, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	a := httptest.NewServer(srv.AdminHandler())
	t.Cleanup(a.Close)
	for _, c := range []struct{ method, path, body string }{
		{"PUT", "/v2/pools/b", `{"uri": "mem:b", "weight": 10}`},
		{"PATCH", "/v2/pools/a", `{"weight": 10}`},
		{"DELETE", "/v2/pools/a", ``},
		{"PUT", "/v2/flavors/gold", `{"pool_list": ["a"]}`},
		{"POST", "/v2/migrations", `{}`},
	} {
		code, body := call(t, c.method, a.URL+c.path, c.body)
		if code != http.StatusConflict || !jsonHasTitle(body, "Not available in cluster mode") {
			t.Errorf("%s %s: %d %s, want 409 Not available in cluster mode", c.method, c.path, code, body)
		}
	}
	if code, _ := call(t, "GET", a.URL+"/v2/pools", ""); code != http.StatusOK {
		t.Errorf("listing pools in cluster mode: %d", code)
	}
}

func jsonHasTitle(body, title string) bool {
	var v struct{ Title string }
	return json.Unmarshal([]byte(body), &v) == nil && v.Title == title
}

// memRouter is a placement router over one mem pool "a", in cluster mode
// or not.
func memRouter(t *testing.T, clustered bool) *placement.Router {
	t.Helper()
	st := memdriver.New()
	r, err := placement.Open(context.Background(), placement.Options{
		Pools: []placement.PoolSpec{{Name: "a", URI: "mem:a", Weight: 100}},
		Open:  func(context.Context, placement.PoolSpec) (drivers.Store, error) { return st, nil },
		NewEngine: func(ctx context.Context, _ string, s drivers.Store) (*index.Engine, error) {
			return index.Open(ctx, index.Options{Store: s, Logger: zerolog.Nop(), NoJanitor: true})
		},
		Logger:  zerolog.Nop(),
		Cluster: clustered,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}
