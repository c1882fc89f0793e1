package server

import (
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/cistern-mq/cistern/drivers/memdriver"
)

// TestAdminChangesLogged: pool and flavor changes and migrations were not
// logged at all, and a refused admin request logged no reason.
func TestAdminChangesLogged(t *testing.T) {
	var buf syncBuffer
	_, admin, stores := poolsEnvLog(t, zerolog.New(&buf))
	stores["mem://op:s3cret@c"] = memdriver.New()
	next := func() string {
		buf.mu.Lock()
		defer buf.mu.Unlock()
		out := buf.buf.String()
		buf.buf.Reset()
		return out
	}
	steps := []struct {
		method, path, body string
		want               []string
	}{
		{"PUT", "/v2/pools/c", `{"weight": 50, "uri": "mem://op:s3cret@c", "options": {"key": "k1"}}`,
			[]string{`"message":"pool created"`, `"pool":"c"`, `"uri":"mem://***@c"`, `"weight":50`, `"options":{"key":"***"}`}},
		{"PATCH", "/v2/pools/c", `{"weight": 70}`,
			[]string{`"message":"pool updated"`, `"weight":70`, `"changed":["weight"]`}},
		{"PUT", "/v2/flavors/gold", `{"pool_list": ["c"]}`,
			[]string{`"message":"flavor created"`, `"flavor":"gold"`, `"pool_list":["c"]`}},
		{"DELETE", "/v2/flavors/gold", "", []string{`"message":"flavor deleted"`, `"flavor":"gold"`}},
		{"POST", "/v2/migrations", `{"project": "demo", "queue": "q1", "pool": "a"}`,
			[]string{`"message":"migration started"`, `"queue":"q1"`, `"to_pool":"a"`}},
		{"PUT", "/v2/pools/d", `{"weight": 50}`,
			[]string{`"level":"info"`, `"message":"admin request refused"`, `"status":400`, `"description":"Both weight and uri are required."`}},
	}
	for _, st := range steps {
		code, body := call(t, st.method, admin+st.path, st.body)
		if code >= 500 {
			t.Fatalf("%s %s: %d %s", st.method, st.path, code, body)
		}
		got := next()
		for _, w := range st.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s %s: log lacks %s:\n%s", st.method, st.path, w, got)
			}
		}
		if strings.Contains(got, "s3cret") || strings.Contains(got, "k1") {
			t.Errorf("%s %s: credentials logged:\n%s", st.method, st.path, got)
		}
	}
	if code, _ := call(t, "DELETE", admin+"/v2/pools/c", ""); code != 204 {
		t.Fatalf("delete pool: %d", code)
	}
	if got := next(); !strings.Contains(got, `"message":"pool deleted"`) || !strings.Contains(got, `"pool":"c"`) {
		t.Errorf("delete: %s", got)
	}
}

// TestMigrationNeedsProject: {"queue": "q1"} without a project started a
// run that could only fail ("/q1 has no placement").
func TestMigrationNeedsProject(t *testing.T) {
	_, admin := adminEnv(t)
	code, body := call(t, "POST", admin+"/v2/migrations", `{"queue": "q1"}`)
	if code != 400 || !strings.Contains(body, "queue needs project") {
		t.Errorf("%d %s, want 400 saying the queue needs its project", code, body)
	}
}
