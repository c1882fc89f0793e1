package server

import (
	"encoding/json"
	"testing"

	"github.com/cistern-mq/cistern/placement"
)

// TestQueuePoolRoute: nothing said which pool a queue is on. GET
// /v2/queues/{name}/pool on the admin listener does, with where the ring
// would put it now; a flavor taking the queue's pool out of the default
// group makes it misplaced.
func TestQueuePoolRoute(t *testing.T) {
	public, admin := adminEnv(t)
	if code, body := call(t, "PUT", public+"/v2/queues/plain", ""); code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	get := func() placement.Location {
		t.Helper()
		code, body := call(t, "GET", admin+"/v2/queues/plain/pool", "")
		if code != 200 {
			t.Fatalf("GET pool: %d %s", code, body)
		}
		var loc placement.Location
		if err := json.Unmarshal([]byte(body), &loc); err != nil {
			t.Fatal(err)
		}
		return loc
	}
	loc := get()
	if (loc.Pool != "a" && loc.Pool != "b") || loc.RingPool != loc.Pool || loc.Misplaced || loc.Project != project || loc.Queue != "plain" {
		t.Fatalf("placed queue: %+v", loc)
	}
	on := loc.Pool
	if code, body := call(t, "PUT", admin+"/v2/flavors/gold", `{"pool_list":["`+on+`"]}`); code != 201 {
		t.Fatalf("flavor: %d %s", code, body)
	}
	loc = get()
	if loc.Pool != on || loc.RingPool == on || loc.RingPool == "" || !loc.Misplaced {
		t.Errorf("after its pool joined a flavor: %+v, want misplaced from %s", loc, on)
	}
	if code, _ := call(t, "GET", admin+"/v2/queues/nosuch/pool", ""); code != 404 {
		t.Errorf("missing queue: %d, want 404", code)
	}
	if code, _ := call(t, "GET", public+"/v2/queues/plain/pool", ""); code != 404 {
		t.Errorf("public listener: %d, want 404", code)
	}
}
