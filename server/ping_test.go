package server

import (
	"sync/atomic"
	"testing"

	"github.com/cistern-mq/cistern/drivers"
	"github.com/cistern-mq/cistern/drivers/memdriver"
	"github.com/cistern-mq/cistern/server/wire"
)

// TestPingDoesNotList: /v2/ping and /v2/health ask the store one constant-
// cost question (a head), never a listing, whose cost grows with the
// catalog; they are 503 / unreachable when that question fails.
func TestPingDoesNotList(t *testing.T) {
	mem := memdriver.New()
	e := newEnv(t, envOpts{store: mem})
	var failHead atomic.Bool
	mem.SetFault(func(op memdriver.Op, container, key string) error {
		if op == memdriver.OpList || op == memdriver.OpListContainers {
			return drivers.Errorf(drivers.ErrUnavailable, "ping must not list")
		}
		if op == memdriver.OpHead && failHead.Load() {
			return drivers.Errorf(drivers.ErrUnavailable, "store down for the test")
		}
		return nil
	})
	e.must(req{method: "GET", path: "/v2/ping"}, 204)
	var h wire.Health
	e.must(req{method: "GET", path: "/v2/health"}, 200).decode(t, &h)
	if !h.StorageReachable {
		t.Errorf("health: %+v, want the store reachable", h)
	}
	failHead.Store(true)
	e.must(req{method: "GET", path: "/v2/ping"}, 503)
	e.must(req{method: "GET", path: "/v2/health"}, 200).decode(t, &h)
	if h.StorageReachable {
		t.Errorf("health with the store down: %+v", h)
	}
}
