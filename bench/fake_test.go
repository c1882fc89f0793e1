package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// fakeZaqar is the smallest Zaqar v2 the bench needs: queues, post,
// claim, delete with claim id, pop, list, and a /metrics page with a
// cistern_store_requests_total counter that it bumps as a store would.
// It checks the headers every /v2 request must carry.
type fakeZaqar struct {
	srv *httptest.Server

	mu        sync.Mutex
	queues    map[string][]*fakeMsg // by project/queue
	seq       int
	store     map[string]int64 // store requests by verb
	clientIDs map[string]bool
	posted    int64 // messages stored
	consumed  int64 // messages deleted with a claim id, or popped
	puts      int   // PUT queue requests
	deletes   int   // DELETE queue requests

	// failPosts answers POST /messages with 503 while set; failed counts
	// those answers and firstFail is closed at the first.
	failPosts bool
	failed    int
	firstFail chan struct{}

	// hang lists the routes ("POST claims", "PUT queue", ...) whose
	// handler blocks until the client gives up or the test ends;
	// hanging is closed when the first of them blocks.
	hang    map[string]bool
	hanging chan struct{}
	closing chan struct{}
	once    [2]sync.Once

	// failQueueDeletes answers DELETE queue with 503 while set.
	failQueueDeletes bool

	metricsStatus int    // answer /metrics with this status when not 0
	metricsBody   string // and with this exposition when not empty
}

type fakeMsg struct {
	id    string
	claim string
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func newFakeZaqar(t testing.TB, configure ...func(*fakeZaqar)) *fakeZaqar {
	t.Helper()
	f := &fakeZaqar{
		queues:    make(map[string][]*fakeMsg),
		store:     make(map[string]int64),
		clientIDs: make(map[string]bool),
		firstFail: make(chan struct{}),
		hang:      make(map[string]bool),
		hanging:   make(chan struct{}),
		closing:   make(chan struct{}),
	}
	for _, c := range configure {
		c(f)
	}
	routes := []struct {
		pattern, name string
		h             func(w http.ResponseWriter, r *http.Request, key string)
	}{
		{"PUT /v2/queues/{q}", "PUT queue", f.putQueue},
		{"DELETE /v2/queues/{q}", "DELETE queue", f.deleteQueue},
		{"POST /v2/queues/{q}/messages", "POST messages", f.post},
		{"GET /v2/queues/{q}/messages", "GET messages", f.list},
		{"DELETE /v2/queues/{q}/messages", "DELETE messages", f.pop},
		{"DELETE /v2/queues/{q}/messages/{id}", "DELETE message", f.deleteMessage},
		{"POST /v2/queues/{q}/claims", "POST claims", f.claim},
	}
	mux := http.NewServeMux()
	for _, rt := range routes {
		mux.HandleFunc(rt.pattern, func(w http.ResponseWriter, r *http.Request) {
			if !f.checkHeaders(w, r) {
				return
			}
			if f.hang[rt.name] {
				// With the body read, the server notices when the
				// client hangs up and cancels r.Context().
				_, _ = io.Copy(io.Discard, r.Body)
				f.once[1].Do(func() { close(f.hanging) })
				select {
				case <-r.Context().Done():
				case <-f.closing:
				}
				return
			}
			rt.h(w, r, r.Header.Get("X-Project-ID")+"/"+r.PathValue("q"))
		})
	}
	mux.HandleFunc("GET /metrics", f.metrics)
	f.srv = httptest.NewServer(mux) // listens on 127.0.0.1
	t.Cleanup(func() {
		close(f.closing)
		f.srv.Close()
	})
	return f
}

func (f *fakeZaqar) URL() string { return f.srv.URL }

func writeError(w http.ResponseWriter, code int, title, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"title": title, "description": desc})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeZaqar) checkHeaders(w http.ResponseWriter, r *http.Request) bool {
	id := r.Header.Get("Client-ID")
	switch {
	case id == "":
		writeError(w, 400, "Missing header value", `The "Client-ID" header is required.`)
	case !uuidRE.MatchString(id):
		writeError(w, 400, "Wrong UUID value", "Malformed hexadecimal UUID.")
	case r.Header.Get("X-Project-ID") == "":
		writeError(w, 400, "Project-Id Missing", "The header X-PROJECT-ID was missing")
	default:
		f.mu.Lock()
		f.clientIDs[id] = true
		f.mu.Unlock()
		return true
	}
	return false
}

func (f *fakeZaqar) putQueue(w http.ResponseWriter, r *http.Request, key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.puts++
	if _, ok := f.queues[key]; ok {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	f.queues[key] = nil
	f.store["put"]++
	w.Header().Set("Location", r.URL.Path)
	w.WriteHeader(http.StatusCreated)
}

func (f *fakeZaqar) deleteQueue(w http.ResponseWriter, r *http.Request, key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deletes++
	if f.failQueueDeletes {
		writeError(w, http.StatusServiceUnavailable, "Service temporarily unavailable", "Queue could not be deleted. Please try again in a few seconds.")
		return
	}
	delete(f.queues, key)
	f.store["delete"]++
	w.WriteHeader(http.StatusNoContent)
}

func (f *fakeZaqar) post(w http.ResponseWriter, r *http.Request, key string) {
	var doc struct {
		Messages []struct {
			TTL  int             `json:"ttl"`
			Body json.RawMessage `json:"body"`
		} `json:"messages"`
	}
	if err := json.NewDecoder(r.Body).Decode(&doc); err != nil || len(doc.Messages) == 0 {
		writeError(w, 400, "Invalid API request", "bad messages document")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failPosts {
		f.failed++
		f.once[0].Do(func() { close(f.firstFail) })
		writeError(w, 503, "Service temporarily unavailable", "Messages could not be enqueued.")
		return
	}
	var hrefs []string
	for range doc.Messages {
		f.seq++
		m := &fakeMsg{id: fmt.Sprintf("m%08d", f.seq)}
		f.queues[key] = append(f.queues[key], m)
		hrefs = append(hrefs, r.URL.Path+"/"+m.id)
	}
	f.posted += int64(len(doc.Messages))
	f.store["put"]++
	writeJSON(w, http.StatusCreated, map[string]any{"resources": hrefs})
}

// take removes nothing; it returns up to n unclaimed messages of key.
func (f *fakeZaqar) take(key string, n int) []*fakeMsg {
	var out []*fakeMsg
	for _, m := range f.queues[key] {
		if len(out) == n {
			break
		}
		if m.claim == "" {
			out = append(out, m)
		}
	}
	return out
}

func (f *fakeZaqar) list(w http.ResponseWriter, r *http.Request, key string) {
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	f.mu.Lock()
	defer f.mu.Unlock()
	f.store["get"]++
	msgs := []map[string]any{}
	for _, m := range f.take(key, max(limit, 1)) {
		msgs = append(msgs, map[string]any{"id": m.id, "href": r.URL.Path + "/" + m.id, "ttl": 60, "age": 0, "body": "x"})
	}
	writeJSON(w, http.StatusOK, map[string]any{"messages": msgs, "links": []any{}})
}

func (f *fakeZaqar) claim(w http.ResponseWriter, r *http.Request, key string) {
	limit, err := strconv.Atoi(r.URL.Query().Get("limit"))
	if err != nil || limit < 1 || limit > 20 {
		writeError(w, 400, "Invalid API request", "Limit must be at least 1 and may not be greater than 20.")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.store["get"]++
	got := f.take(key, limit)
	if len(got) == 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	f.seq++
	cid := fmt.Sprintf("c%08d", f.seq)
	f.store["put"]++
	var msgs []map[string]any
	for _, m := range got {
		m.claim = cid
		msgs = append(msgs, map[string]any{"id": m.id, "href": strings.TrimSuffix(r.URL.Path, "claims") + "messages/" + m.id + "?claim_id=" + cid, "ttl": 60, "age": 0, "body": "x"})
	}
	w.Header().Set("Location", r.URL.Path+"/"+cid)
	writeJSON(w, http.StatusCreated, map[string]any{"messages": msgs})
}

func (f *fakeZaqar) deleteMessage(w http.ResponseWriter, r *http.Request, key string) {
	id, cid := r.PathValue("id"), r.URL.Query().Get("claim_id")
	f.mu.Lock()
	defer f.mu.Unlock()
	q := f.queues[key]
	i := slices.IndexFunc(q, func(m *fakeMsg) bool { return m.id == id })
	switch {
	case i < 0:
	case q[i].claim != "" && q[i].claim != cid:
		writeError(w, 403, "Unable to delete", "This message is claimed; it cannot be deleted without a valid claim ID.")
		return
	default:
		f.queues[key] = slices.Delete(q, i, i+1)
		f.consumed++
		f.store["delete"]++
	}
	w.WriteHeader(http.StatusNoContent)
}

func (f *fakeZaqar) pop(w http.ResponseWriter, r *http.Request, key string) {
	n, err := strconv.Atoi(r.URL.Query().Get("pop"))
	if err != nil || n < 1 || n > 20 {
		writeError(w, 400, "Invalid API request", "Pop value must be at least 1 and may not be greater than 20.")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	got := f.take(key, n)
	msgs := []map[string]any{}
	for _, m := range got {
		msgs = append(msgs, map[string]any{"id": m.id, "age": 0, "ttl": 60, "body": "x", "claim_id": nil, "claim_count": 0})
	}
	f.queues[key] = slices.DeleteFunc(f.queues[key], func(m *fakeMsg) bool { return slices.Contains(got, m) })
	f.consumed += int64(len(got))
	f.store["delete"]++
	writeJSON(w, http.StatusOK, map[string]any{"messages": msgs})
}

func (f *fakeZaqar) metrics(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.metricsStatus != 0 {
		w.WriteHeader(f.metricsStatus)
		return
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	if f.metricsBody != "" {
		fmt.Fprint(w, f.metricsBody)
		return
	}
	fmt.Fprintln(w, "# HELP cistern_store_requests_total Object store requests by pool and verb.")
	fmt.Fprintln(w, "# TYPE cistern_store_requests_total counter")
	for _, verb := range []string{"delete", "get", "put"} {
		fmt.Fprintf(w, "cistern_store_requests_total{pool=\"default\",verb=%q} %d\n", verb, f.store[verb])
	}
	// Lines that must not be counted.
	fmt.Fprintln(w, `cistern_store_requests_total_created{pool="default",verb="put"} 1.7e+09`)
	fmt.Fprintln(w, `cistern_store_request_duration_seconds_count{pool="default",verb="put"} 99`)
}

// snapshot returns the counters under the lock.
func (f *fakeZaqar) snapshot() (posted, consumed int64, queues, clients int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.posted, f.consumed, len(f.queues), len(f.clientIDs)
}
