package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cistern-mq/cistern/cluster/etcdtest"
	"github.com/cistern-mq/cistern/server"
)

// The cluster crash tests run three real binaries on one pool and a real
// etcd (embedded in the test process), drive them with producers and
// consumers that send each request to a random node (so that most are
// forwarded), break the cluster (kill -9, SIGSTOP, etcd down, SIGTERM)
// and check every acknowledgement against what a surviving node lists,
// with crash_test.go's ledger. This file is their harness.

// clusterLease is etcd.lease_ttl for the tests: short, so that a dead
// node's queues move in seconds.
const clusterLease = "2s"

// testCluster is three (or more) nodes on one store and one etcd.
type testCluster struct {
	t     *testing.T
	bin   string
	etcd  *etcdtest.Etcd
	nodes []*clusterNode
	runs  []*proc // every run of every node, for their logs
}

// clusterNode is one node: the same id, address and flags across restarts.
type clusterNode struct {
	id   string
	addr string
	args []string
	p    *proc // the current run; nil while stopped
}

func (n *clusterNode) base() string { return "http://" + n.addr }

// startCluster starts n nodes, each with the store flags store.
func startCluster(t *testing.T, bin string, n int, store ...string) *testCluster {
	t.Helper()
	c := &testCluster{t: t, bin: bin, etcd: etcdtest.Start(t)}
	// Registered before any node starts, so it runs after start's own
	// clean-ups have killed them all: the logs are complete then.
	t.Cleanup(c.showErrors)
	cfg := filepath.Join(t.TempDir(), "cluster.yaml")
	if err := os.WriteFile(cfg, []byte("etcd:\n  lease_ttl: "+clusterLease+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		addr := freePort(t)
		nd := &clusterNode{id: fmt.Sprintf("node%d", i), addr: addr}
		nd.args = append([]string{"-config", cfg, "-etcd", c.etcd.Endpoints()[0], "-node-id", nd.id,
			"-advertise", "http://" + addr}, store...)
		c.nodes = append(c.nodes, nd)
		c.start(i)
	}
	return c
}

// start runs node i again with its flags and waits until it answers.
func (c *testCluster) start(i int) {
	c.t.Helper()
	n := c.nodes[i]
	n.p = start(c.t, c.bin, n.addr, n.args...)
	c.runs = append(c.runs, n.p)
}

// showErrors logs the error lines of every node's runs.
func (c *testCluster) showErrors() {
	n := 0
	for _, p := range c.runs {
		for line := range strings.Lines(p.log.String()) { // console format: "<time> ERR <message> key=value..."
			if strings.Contains(line, " ERR ") || strings.Contains(line, " FTL ") || strings.Contains(line, "panic") {
				if n++; n <= 40 {
					c.t.Logf("node log: %s", strings.TrimSpace(line))
				}
			}
		}
	}
	if n > 0 {
		c.t.Logf("%d error lines in the nodes' logs", n)
	}
}

// kill9 kills node i at once.
func (c *testCluster) kill9(i int) {
	c.nodes[i].p.kill()
	c.nodes[i].p = nil
}

// term sends node i SIGTERM and waits for it to exit (it hands its queues
// over first), failing the test if it takes longer than limit.
func (c *testCluster) term(i int, limit time.Duration) time.Duration {
	c.t.Helper()
	p := c.nodes[i].p
	began := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		c.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			c.t.Errorf("%s exited with %v after SIGTERM\n%s", c.nodes[i].id, err, p.log.String())
		}
	case <-time.After(limit):
		p.cmd.Process.Signal(syscall.SIGKILL)
		<-done
		c.t.Fatalf("%s did not exit within %s of SIGTERM\n%s", c.nodes[i].id, limit, p.log.String())
	}
	c.nodes[i].p = nil
	return time.Since(began)
}

// signal sends node i a signal (SIGSTOP, SIGCONT).
func (c *testCluster) signal(i int, s syscall.Signal) {
	c.t.Helper()
	if err := c.nodes[i].p.cmd.Process.Signal(s); err != nil {
		c.t.Fatal(err)
	}
}

// bases returns the base URLs of the nodes numbered in idx.
func (c *testCluster) bases(idx ...int) []string {
	var out []string
	for _, i := range idx {
		out = append(out, c.nodes[i].base())
	}
	return out
}

// others returns the numbers of every node but skip.
func (c *testCluster) others(skip int) []int {
	var out []int
	for i := range c.nodes {
		if i != skip {
			out = append(out, i)
		}
	}
	return out
}

// all returns every node's number.
func (c *testCluster) all() []int { return c.others(-1) }

// owns tells whether node i serves queue itself: a request marked as
// forwarded as often as a request may be is not forwarded again, so the
// node answers it only when it owns the queue and answers 503 otherwise.
func (c *testCluster) owns(i int, queue string) bool {
	req, err := http.NewRequest("GET", c.nodes[i].base()+"/v2/queues/"+queue+"/stats", nil)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Client-ID", "00000000-0000-4000-b000-000000000000")
	req.Header.Set("X-Project-ID", "crash")
	req.Header.Set(server.ForwardedHeader, "test-probe")
	req.Header.Set(server.HopsHeader, strconv.Itoa(server.MaxHops))
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// settle waits until every queue is served by exactly one node of live
// and returns, for each node of live, the queues it owns.
func (c *testCluster) settle(live []int, qs []string, limit time.Duration) map[int][]string {
	c.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		owned := map[int][]string{}
		ok := true
		for _, q := range qs {
			n := 0
			for _, i := range live {
				if c.owns(i, q) {
					owned[i] = append(owned[i], q)
					n++
				}
			}
			if n != 1 {
				ok = false
				break
			}
		}
		if ok {
			return owned
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("ownership did not settle on nodes %v within %s", live, limit)
		}
		<-time.After(50 * time.Millisecond) // polling the nodes' ownership
	}
}

// createQueues creates every queue through node 0, retrying 503s.
func (c *testCluster) createQueues(qs []string) {
	c.t.Helper()
	cl := &client{base: c.nodes[0].base(), id: "00000000-0000-4000-a000-000000000001", project: "crash",
		http: &http.Client{Timeout: 20 * time.Second}}
	deadline := time.Now().Add(60 * time.Second)
	for _, q := range qs {
		for {
			code, _, data, err := cl.send("PUT", "/v2/queues/"+q, map[string]any{})
			if err == nil && code/100 == 2 {
				break
			}
			if time.Now().After(deadline) || (err == nil && code != http.StatusServiceUnavailable) {
				c.t.Fatalf("create %s: %d %v %s", q, code, err, data)
			}
			<-time.After(50 * time.Millisecond) // polling until the queue has an owner
		}
	}
}

// verifyThrough lists every queue through base, retrying 503s (the
// ownership may still be moving) until a deadline, and checks the ledger.
func verifyThrough(t *testing.T, cycle int, base string, qs []string, l *ledger) {
	t.Helper()
	c := &client{base: base, id: "00000000-0000-4000-a000-000000000000", project: "crash",
		http: &http.Client{Timeout: 30 * time.Second, Transport: retry503{time.Now().Add(60 * time.Second)}}}
	present := map[string]seen{}
	for _, q := range qs {
		list(t, cycle, c, q, present)
	}
	check(t, cycle, l, present)
}

// retry503 sends a request again, until its deadline, while the answer is
// a 503 or there is none. Only for requests without a body (GET).
type retry503 struct{ deadline time.Time }

func (r retry503) RoundTrip(req *http.Request) (*http.Response, error) {
	for {
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err == nil && (resp.StatusCode != http.StatusServiceUnavailable || req.Body != nil) {
			return resp, nil
		}
		if time.Now().After(r.deadline) || req.Body != nil {
			return resp, err
		}
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		<-time.After(50 * time.Millisecond) // polling until the queue has an owner again
	}
}

// send is client.do with the answer's headers.
func (c *client) send(method, path string, body any) (int, http.Header, []byte, error) {
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, r)
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Client-ID", c.id)
	req.Header.Set("X-Project-ID", c.project)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, data, err
}

func newLedger() *ledger {
	return &ledger{posted: map[string]string{}, order: map[int][]string{}, deleted: map[string]bool{},
		tried: map[string]bool{}, claimed: map[string]string{}}
}

// load is producers and consumers sending each request to a random node
// of targets, recording what they were told in the ledger and tallying
// the answers.
type load struct {
	t       *testing.T
	l       *ledger
	qs      []string
	timeout time.Duration // each request's client-side limit
	prBase  int           // producer numbers start here: two loads on one ledger keep them apart
	targets atomic.Pointer[[]string]
	stop    atomic.Bool
	wg      sync.WaitGroup

	mu      sync.Mutex
	codes   map[int]int    // answers by status
	errs    int            // requests without an answer
	noRetry int            // 503s without Retry-After
	other   []string       // answers outside {2xx, 503}: what they were
	why503  map[string]int // 503s by request and description
}

func newLoad(t *testing.T, l *ledger, qs []string, timeout time.Duration, targets []string) *load {
	ld := &load{t: t, l: l, qs: qs, timeout: timeout, codes: map[int]int{}, why503: map[string]int{}}
	ld.setTargets(targets)
	return ld
}

func (ld *load) setTargets(b []string) { ld.targets.Store(&b) }

func (ld *load) pick() string {
	b := *ld.targets.Load()
	return b[rand.IntN(len(b))]
}

// tally records one answer.
func (ld *load) tally(what string, code int, h http.Header, data []byte, err error) {
	ld.mu.Lock()
	defer ld.mu.Unlock()
	switch {
	case err != nil:
		ld.errs++
	default:
		ld.codes[code]++
		if code == http.StatusServiceUnavailable {
			if h.Get("Retry-After") == "" {
				ld.noRetry++
			}
			var e struct{ Description string }
			json.Unmarshal(data, &e)
			for _, q := range ld.qs {
				e.Description = strings.ReplaceAll(e.Description, q, "Q")
			}
			ld.why503[what+": "+e.Description]++
		}
		if code/100 != 2 && code != http.StatusServiceUnavailable && len(ld.other) < 20 {
			ld.other = append(ld.other, fmt.Sprintf("%s: %d %s", what, code, data))
		}
	}
}

// summary is the tally as a line for the log.
func (ld *load) summary() string {
	ld.mu.Lock()
	defer ld.mu.Unlock()
	return fmt.Sprintf("answers by status %v, %d without an answer, %d 503s without Retry-After, 503s by cause %v, other: %q",
		ld.codes, ld.errs, ld.noRetry, ld.why503, ld.other)
}

// post posts one message as producer pr and records a 201 in the ledger.
func (ld *load) post(c *client, queue string, pr int, body string) int {
	c.base = ld.pick()
	code, h, data, err := c.send("POST", "/v2/queues/"+queue+"/messages",
		map[string]any{"messages": []map[string]any{{"body": json.RawMessage(body), "ttl": 3600}}})
	ld.tally("post", code, h, data, err)
	if err != nil || code != http.StatusCreated {
		return code // unacknowledged: may or may not be there
	}
	var res struct{ Resources []string }
	if json.Unmarshal(data, &res) != nil || len(res.Resources) != 1 {
		ld.t.Errorf("post answered 201 with %s", data)
		return 0
	}
	key := queue + "/" + idFromHref(res.Resources[0])
	ld.l.mu.Lock()
	ld.l.posted[key] = body
	ld.l.order[pr] = append(ld.l.order[pr], key)
	ld.l.mu.Unlock()
	return code
}

// claimAndDelete claims up to 5 messages of queue and deletes each with
// its claim id, each request to a random node.
func (ld *load) claimAndDelete(c *client, queue string) {
	c.base = ld.pick()
	code, h, data, err := c.send("POST", "/v2/queues/"+queue+"/claims?limit=5", map[string]int{"ttl": 3600, "grace": 60})
	ld.tally("claim", code, h, data, err)
	if err != nil || code != http.StatusCreated {
		return
	}
	var res struct{ Messages []wireMsg }
	if err := json.Unmarshal(data, &res); err != nil {
		ld.t.Errorf("claim answered 201 with %s", data)
		return
	}
	for _, m := range res.Messages {
		id := idFromHref(m.Href)
		u, err := url.Parse(m.Href)
		claim := ""
		if err == nil {
			claim = u.Query().Get("claim_id")
		}
		if claim == "" {
			ld.t.Errorf("claimed message href %q carries no claim_id", m.Href)
			return
		}
		key := queue + "/" + id
		ld.l.mu.Lock()
		if prev, ok := ld.l.claimed[key]; ok && prev != claim {
			ld.l.doubles = append(ld.l.doubles, key)
		}
		ld.l.claimed[key] = claim
		ld.l.tried[key] = true
		ld.l.mu.Unlock()
		c.base = ld.pick()
		code, h, data, err := c.send("DELETE", "/v2/queues/"+queue+"/messages/"+id+"?claim_id="+claim, nil)
		ld.tally("delete", code, h, data, err)
		if err == nil && code == http.StatusNoContent {
			ld.l.mu.Lock()
			ld.l.deleted[key] = true
			ld.l.mu.Unlock()
		}
	}
}

// run starts producers and consumers until halt; phase tells the bodies
// of one run from another's.
func (ld *load) run(phase, producers, consumers int) {
	ld.stop.Store(false)
	for pr := ld.prBase; pr < ld.prBase+producers; pr++ {
		c := &client{id: fmt.Sprintf("00000000-0000-4000-8000-%012d", pr), project: "crash", http: &http.Client{Timeout: ld.timeout}}
		ld.wg.Go(func() {
			for i := 0; !ld.stop.Load(); i++ {
				ld.post(c, ld.qs[(pr+i)%len(ld.qs)], pr, fmt.Sprintf(`{"phase":%d,"producer":%d,"i":%d}`, phase, pr, i))
			}
		})
	}
	for cn := range consumers {
		c := &client{id: fmt.Sprintf("00000000-0000-4000-9000-%012d", cn), project: "crash", http: &http.Client{Timeout: ld.timeout}}
		ld.wg.Go(func() {
			for n := 0; !ld.stop.Load(); n++ {
				ld.claimAndDelete(c, ld.qs[(cn*7+n)%len(ld.qs)])
			}
		})
	}
}

// halt stops the producers and consumers and waits for them.
func (ld *load) halt() {
	ld.stop.Store(true)
	ld.wg.Wait()
}

// progress waits until the ledger holds posts more 201 posts and deletes
// more 204 deletes than it did when called, or limit passed.
func (ld *load) progress(posts, deletes int, limit time.Duration) {
	ld.l.mu.Lock()
	p0, d0 := len(ld.l.posted), len(ld.l.deleted)
	ld.l.mu.Unlock()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		ld.l.mu.Lock()
		p, d := len(ld.l.posted), len(ld.l.deleted)
		ld.l.mu.Unlock()
		if p >= p0+posts && d >= d0+deletes {
			return
		}
		<-time.After(10 * time.Millisecond) // polling the clients' progress
	}
}

// untilServed posts to each queue of qs (as producer firstPr+its index)
// through a random target until it answers 201, and returns how long
// after since each took; it fails the test after limit.
func (ld *load) untilServed(qs []string, firstPr int, since time.Time, limit time.Duration) []time.Duration {
	took := make([]time.Duration, len(qs))
	var wg sync.WaitGroup
	for j, q := range qs {
		c := &client{id: fmt.Sprintf("00000000-0000-4000-c000-%012d", firstPr+j), project: "crash", http: &http.Client{Timeout: ld.timeout}}
		wg.Go(func() {
			deadline := time.Now().Add(limit)
			for i := 0; ; i++ {
				if ld.post(c, q, firstPr+j, fmt.Sprintf(`{"probe":%d,"i":%d}`, firstPr+j, i)) == http.StatusCreated {
					took[j] = time.Since(since)
					return
				}
				if time.Now().After(deadline) {
					ld.t.Errorf("queue %s did not answer a post with 201 within %s", q, limit)
					return
				}
				<-time.After(20 * time.Millisecond) // polling the queue until it is served
			}
		})
	}
	wg.Wait()
	return took
}

// queueNames returns n fresh queue names.
func queueNames(n int) []string {
	qs := make([]string, n)
	for i := range qs {
		qs[i] = fmt.Sprintf("cl-%d-%d", time.Now().UnixNano(), i)
	}
	return qs
}

// minMax returns the least and the greatest of d.
func minMax(d []time.Duration) (lo, hi time.Duration) {
	for i, x := range d {
		if i == 0 || x < lo {
			lo = x
		}
		if x > hi {
			hi = x
		}
	}
	return lo, hi
}
