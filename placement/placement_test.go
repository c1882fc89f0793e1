package placement

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cistern-mq/cistern/drivers"
	"github.com/cistern-mq/cistern/drivers/fsdriver"
	"github.com/cistern-mq/cistern/drivers/memdriver"
	"github.com/cistern-mq/cistern/drivers/s3driver"
	"github.com/cistern-mq/cistern/drivers/swiftdriver"
	"github.com/cistern-mq/cistern/index"
	"github.com/cistern-mq/cistern/index/enginetest"
)

var ctx = context.Background()

// world is a set of stores that outlive the routers opened over them, so
// a test can crash a router and open another on the same data.
type world struct {
	t      *testing.T
	stores map[string]drivers.Store // by URI
	// crash makes every store of the current router fail.
	mu      sync.Mutex
	current []*enginetest.Crashable
	// allow is the routers' URIAllow: any store, unless a test says.
	allow []string
}

func newWorld(t *testing.T) *world {
	return &world{t: t, stores: map[string]drivers.Store{}, allow: []string{AllowAnyURI}}
}

// memPool returns a pool spec backed by a fresh mem store.
func (w *world) memPool(name string, weight int64) PoolSpec {
	uri := "mem:" + name
	w.stores[uri] = memdriver.New()
	return PoolSpec{Name: name, URI: uri, Weight: weight}
}

func (w *world) open(ctx context.Context, s PoolSpec) (drivers.Store, error) {
	st, ok := w.stores[s.URI]
	if !ok {
		return nil, fmt.Errorf("no store at %q", s.URI)
	}
	c := &enginetest.Crashable{Store: st}
	w.mu.Lock()
	w.current = append(w.current, c)
	w.mu.Unlock()
	return c, nil
}

func (w *world) crash() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range w.current {
		c.Crash()
	}
	w.current = nil
}

func (w *world) router(pools ...PoolSpec) *Router {
	w.t.Helper()
	r, err := Open(ctx, Options{
		Pools: pools,
		Open:  w.open,
		NewEngine: func(ctx context.Context, name string, s drivers.Store) (*index.Engine, error) {
			return index.Open(ctx, index.Options{Store: s, Logger: zerolog.Nop(), SnapshotLogs: 8})
		},
		Logger:   zerolog.Nop(),
		URIAllow: w.allow,
	})
	if err != nil {
		w.t.Fatalf("placement.Open: %v", err)
	}
	w.t.Cleanup(func() { r.Close() })
	return r
}

func ref(i int) index.QueueRef { return index.QueueRef{Project: "p", Name: fmt.Sprintf("q%03d", i)} }

func TestPlacementFollowsRing(t *testing.T) {
	w := newWorld(t)
	a, b, c := w.memPool("a", 100), w.memPool("b", 100), w.memPool("c", 100)
	r := w.router(a, b, c)
	counts := map[string]int{}
	for i := range 60 {
		if _, err := r.Post(ctx, ref(i), "client", []index.NewMessage{{Body: json.RawMessage(`1`), TTL: 3600}}); err != nil {
			t.Fatal(err)
		}
		p, _, err := r.lookup(ctx, ref(i))
		if err != nil {
			t.Fatal(err)
		}
		want, _ := r.ringPool(ref(i), "")
		if p != want {
			t.Fatalf("%s placed on %s, ring says %s", ref(i), p, want)
		}
		counts[p]++
	}
	if len(counts) != 3 {
		t.Errorf("60 queues used %d pools: %v", len(counts), counts)
	}
	// Listing merges every pool.
	qs, err := r.ListQueues(ctx, "p", "", 100, false)
	if err != nil || len(qs) != 60 || qs[0].Name != "q000" || qs[59].Name != "q059" {
		t.Fatalf("ListQueues = %d, %v", len(qs), err)
	}
	page, _ := r.ListQueues(ctx, "p", "q010", 5, false)
	if len(page) != 5 || page[0].Name != "q011" {
		t.Fatalf("page after q010 = %+v", page)
	}

	// Adding a pool changes where new queues go, never where old ones are.
	d := w.memPool("d", 100)
	if _, err := r.PutPool(ctx, d); err != nil {
		t.Fatal(err)
	}
	moved := 0
	for i := range 60 {
		p, _, _ := r.lookup(ctx, ref(i))
		want, _ := r.ringPool(ref(i), "")
		if p != want {
			moved++
		}
		if msgs, err := r.List(ctx, ref(i), index.ListOptions{Limit: 10, Echo: true}); err != nil || len(msgs) != 1 {
			t.Fatalf("%s after adding a pool: %d messages, %v", ref(i), len(msgs), err)
		}
	}
	if moved == 0 || moved > 30 {
		t.Errorf("%d of 60 queues now belong elsewhere; want about a quarter", moved)
	}
	// A restart keeps the registry, the ring and the placements.
	r.Close()
	r2 := w.router(a, b, c)
	if len(r2.Pools()) != 4 {
		t.Fatalf("after restart: %d pools, want 4 (one added by the admin API)", len(r2.Pools()))
	}
	for i := range 60 {
		if msgs, err := r2.List(ctx, ref(i), index.ListOptions{Limit: 10, Echo: true}); err != nil || len(msgs) != 1 {
			t.Fatalf("%s after restart: %d messages, %v", ref(i), len(msgs), err)
		}
	}
}

func TestRegistry(t *testing.T) {
	w := newWorld(t)
	a, b := w.memPool("a", 100), w.memPool("b", 100)
	r := w.router(a, b)
	if _, err := r.PutPool(ctx, PoolSpec{Name: "x", URI: "mem:nowhere", Weight: 10}); !errors.Is(err, ErrPoolUnreachable) {
		t.Errorf("unreachable pool: %v", err)
	}
	if _, err := r.PutFlavor(ctx, FlavorSpec{Name: "gold", Pools: []string{"nope"}}); !errors.Is(err, ErrPoolNotFound) {
		t.Errorf("flavor of an unknown pool: %v", err)
	}
	if created, err := r.PutFlavor(ctx, FlavorSpec{Name: "gold", Pools: []string{"b"}}); err != nil || !created {
		t.Fatalf("PutFlavor = %v, %v", created, err)
	}
	if p, _ := r.GetPool("b"); p.Flavor != "gold" {
		t.Errorf("pool b's flavor %q, want gold", p.Flavor)
	}
	// A queue of flavor gold goes to b whatever its name.
	for i := range 10 {
		q := index.QueueRef{Project: "p", Name: fmt.Sprintf("gold%d", i)}
		if _, err := r.CreateQueue(ctx, q, json.RawMessage(`{"_flavor":"gold"}`)); err != nil {
			t.Fatal(err)
		}
		if p, _, _ := r.lookup(ctx, q); p != "b" {
			t.Errorf("%s of flavor gold on %s", q, p)
		}
	}
	if _, err := r.CreateQueue(ctx, ref(1), json.RawMessage(`{"_flavor":"silver"}`)); !errors.Is(err, ErrFlavorNotFound) {
		t.Errorf("unknown flavor: %v", err)
	}
	if err := r.DeletePool(ctx, "b"); !errors.Is(err, ErrPoolInUse) {
		t.Errorf("deleting a pool with queues: %v", err)
	}
	if err := r.DeletePool(ctx, "a"); !errors.Is(err, ErrPoolInUse) {
		t.Errorf("deleting the control pool: %v", err)
	}
	if err := r.DeleteFlavor(ctx, "gold"); err != nil {
		t.Fatal(err)
	}
	if p, _ := r.GetPool("b"); p.Flavor != "" {
		t.Errorf("after deleting its flavor, pool b's flavor is %q", p.Flavor)
	}
	c := w.memPool("c", 50)
	if _, err := r.PutPool(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := r.DeletePool(ctx, "c"); err != nil {
		t.Errorf("deleting an empty pool: %v", err)
	}
	if _, err := r.GetPool("c"); !errors.Is(err, ErrPoolNotFound) {
		t.Errorf("deleted pool still there: %v", err)
	}
}

// migrationUnderLoad creates queues on pools, adds one more, then migrates
// every queue the ring now places elsewhere while producers and consumers
// run, crashing the migrator once in the middle, and checks every
// acknowledgement.
func migrationUnderLoad(t *testing.T, w *world, pools []PoolSpec, added PoolSpec, queues int) {
	r := w.router(pools...)
	var cur atomic.Pointer[Router]
	cur.Store(r)
	for i := range queues {
		if _, err := r.CreateQueue(ctx, ref(i), nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.PutPool(ctx, added); err != nil {
		t.Fatal(err)
	}
	l := &ledger{posted: map[string]bool{}, tried: map[string]bool{}, deleted: map[string]bool{}, claimed: map[string]string{}, order: map[string][]string{}}
	var stop atomic.Bool
	var wg sync.WaitGroup
	for p := range 4 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				q := ref((p + i) % queues)
				ids, err := cur.Load().Post(ctx, q, fmt.Sprint("producer", p), []index.NewMessage{{Body: json.RawMessage(fmt.Sprintf(`{"p":%d,"i":%d}`, p, i)), TTL: 3600}})
				if err == nil {
					l.mu.Lock()
					l.posted[q.Name+"/"+ids[0]] = true
					key := fmt.Sprintf("%s/%d", q.Name, p)
					l.order[key] = append(l.order[key], ids[0])
					l.mu.Unlock()
				}
			}
		})
	}
	for c := range 2 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				q := ref((c + i) % queues)
				cl, err := cur.Load().Claim(ctx, q, index.ClaimOptions{TTL: 3600, Grace: 60, Limit: 3})
				if err != nil || cl == nil {
					continue
				}
				for _, m := range cl.Messages {
					k := q.Name + "/" + m.ID
					l.mu.Lock()
					if prev, ok := l.claimed[k]; ok && prev != cl.ID {
						l.doubles = append(l.doubles, k)
					}
					l.claimed[k] = cl.ID
					l.tried[k] = true
					l.mu.Unlock()
					if cur.Load().DeleteMessage(ctx, q, m.ID, cl.ID) == nil {
						l.mu.Lock()
						l.deleted[k] = true
						l.mu.Unlock()
					}
				}
			}
		})
	}
	enginetest.Eventually(t, "some traffic", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.posted) > 40 && len(l.deleted) > 10
	})

	// The first migration crashes after adopting the queue in the target,
	// before the placement flips.
	var crashed atomic.Bool
	r.mig.hook = func(step string, q index.QueueRef) error {
		if step == "adopted" && crashed.CompareAndSwap(false, true) {
			w.crash()
			return errors.New("crash")
		}
		return nil
	}
	if _, err := r.Migrate(nil, ""); err != nil {
		t.Fatal(err)
	}
	enginetest.Eventually(t, "the crash", func() bool { return crashed.Load() })
	// A new process on the same stores resumes the interrupted migration,
	// then a new job moves the rest.
	r2 := w.router(pools...)
	cur.Store(r2)
	r.Close()
	enginetest.Eventually(t, "the interrupted migration to finish", func() bool {
		m, _ := listMigrating(ctx, r2)
		return len(m) == 0
	})
	if _, err := r2.Migrate(nil, ""); err != nil {
		t.Fatal(err)
	}
	enginetest.Eventually(t, "the migration job", func() bool { return !r2.MigrationStatus().Running })
	st := r2.MigrationStatus()
	t.Logf("migration: %+v", st)
	if st.Failed > 0 {
		t.Fatalf("migration failed: %v", st.Errors)
	}
	stop.Store(true)
	wg.Wait()

	moved := 0
	for i := range queues {
		p, _, err := r2.lookup(ctx, ref(i))
		if err != nil {
			t.Fatal(err)
		}
		want, _ := r2.ringPool(ref(i), "")
		if p != want {
			t.Errorf("%s is on %s, ring says %s", ref(i), p, want)
		}
		if p == added.Name {
			moved++
		}
	}
	t.Logf("%d of %d queues now on the added pool %s", moved, queues, added.Name)
	if moved == 0 {
		t.Errorf("no queue moved to the added pool")
	}
	// Every acknowledgement holds.
	present := map[string]int{}
	for i := range queues {
		msgs, err := r2.List(ctx, ref(i), index.ListOptions{Limit: 1 << 20, Echo: true, IncludeClaimed: true})
		if err != nil {
			t.Fatal(err)
		}
		for j, m := range msgs {
			present[ref(i).Name+"/"+m.ID] = j
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for k := range l.posted {
		if _, ok := present[k]; !ok && !l.tried[k] {
			t.Errorf("acknowledged message %s lost", k)
		}
	}
	for k := range l.deleted {
		if _, ok := present[k]; ok {
			t.Errorf("message %s deleted with a 204 is back", k)
		}
	}
	for key, ids := range l.order {
		q := strings.SplitN(key, "/", 2)[0]
		last := -1
		for _, id := range ids {
			if pos, ok := present[q+"/"+id]; ok {
				if pos < last {
					t.Errorf("%s: message %s out of post order", key, id)
				}
				last = pos
			}
		}
	}
	if len(l.doubles) > 0 {
		t.Errorf("messages in two claims: %v", l.doubles)
	}
	t.Logf("%d posts and %d deletes acknowledged, %d messages present", len(l.posted), len(l.deleted), len(present))
}

type ledger struct {
	mu      sync.Mutex
	posted  map[string]bool
	tried   map[string]bool
	deleted map[string]bool
	claimed map[string]string
	order   map[string][]string
	doubles []string
}

func TestMigrationUnderLoadMem(t *testing.T) {
	w := newWorld(t)
	pools := []PoolSpec{w.memPool("a", 100), w.memPool("b", 100), w.memPool("c", 100)}
	migrationUnderLoad(t, w, pools, w.memPool("d", 100), 24)
}

// TestMigrationThreeKinds runs the migration on three pools of three kinds,
// fs, Swift and S3 on Swift's s3api, adding a second fs pool.
func TestMigrationThreeKinds(t *testing.T) {
	authURL, user, key := os.Getenv("CISTERN_SWIFT_AUTH_URL"), os.Getenv("CISTERN_SWIFT_USER"), os.Getenv("CISTERN_SWIFT_KEY")
	s3url, s3key, s3secret := os.Getenv("CISTERN_S3_ENDPOINT"), os.Getenv("CISTERN_S3_ACCESS_KEY"), os.Getenv("CISTERN_S3_SECRET_KEY")
	if authURL == "" || s3url == "" {
		msg := "the local Swift is not running: scripts/swift-aio.sh start"
		if os.Getenv("CISTERN_REQUIRE_BACKENDS") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	w := newWorld(t)
	run := time.Now().UnixNano()
	fs1, err := fsdriver.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fs2, err := fsdriver.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	sw, err := swiftdriver.New(ctx, swiftdriver.Config{AuthURL: authURL, User: user, Key: key, ContainerPrefix: fmt.Sprintf("mig%d-", run)})
	if err != nil {
		t.Fatal(err)
	}
	s3, err := s3driver.New(ctx, s3driver.Config{Endpoint: s3url, AccessKey: s3key, SecretKey: s3secret, Region: "us-east-1",
		PathStyle: true, Bucket: "cistern-migration-test", CreateBucket: true, KeyPrefix: fmt.Sprintf("mig%d/", run)})
	if err != nil {
		t.Fatal(err)
	}
	w.stores["fs:one"], w.stores["swift:"], w.stores["s3:"], w.stores["fs:two"] = fs1, sw, s3, fs2
	pools := []PoolSpec{
		{Name: "local", URI: "fs:one", Weight: 100},
		{Name: "swift", URI: "swift:", Weight: 100},
		{Name: "s3", URI: "s3:", Weight: 100},
	}
	migrationUnderLoad(t, w, pools, PoolSpec{Name: "local2", URI: "fs:two", Weight: 100}, 12)
}

// A message dead-lettered from a queue on one pool reaches its dead-letter
// queue on another pool, not a hidden copy of it beside its source.
func TestDeadLetterAcrossPools(t *testing.T) {
	w := newWorld(t)
	a, b := w.memPool("a", 100), w.memPool("b", 100)
	r := w.router(a, b)
	// Names the ring puts on different pools.
	var src, dlq index.QueueRef
	for i := 0; src.Name == "" || dlq.Name == ""; i++ {
		ref := index.QueueRef{Project: "p", Name: fmt.Sprintf("n%d", i)}
		switch p, _ := r.ringPool(ref, ""); {
		case p == "b" && src.Name == "":
			src = ref
		case p == "a" && dlq.Name == "":
			dlq = ref
		}
	}
	if _, err := r.CreateQueue(ctx, dlq, nil); err != nil {
		t.Fatal(err)
	}
	meta := fmt.Sprintf(`{"_max_claim_count":1,"_dead_letter_queue":%q}`, dlq.Name)
	if _, err := r.CreateQueue(ctx, src, json.RawMessage(meta)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Post(ctx, src, "c", []index.NewMessage{{Body: json.RawMessage(`{"bad":1}`), TTL: 300}}); err != nil {
		t.Fatal(err)
	}
	c, err := r.Claim(ctx, src, index.ClaimOptions{TTL: 60, Grace: 60, Limit: 1})
	if err != nil || c == nil {
		t.Fatalf("claim = %+v, %v", c, err)
	}
	if err := r.ReleaseClaim(ctx, src, c.ID); err != nil {
		t.Fatal(err)
	}
	if c, err := r.Claim(ctx, src, index.ClaimOptions{TTL: 60, Grace: 60, Limit: 1}); err != nil || c != nil && len(c.Messages) > 0 {
		t.Fatalf("second claim = %+v, %v; want nothing, the message moving aside", c, err)
	}
	enginetest.Eventually(t, "the message to reach the dead-letter queue on the other pool", func() bool {
		msgs, err := r.List(ctx, dlq, index.ListOptions{Limit: 10, Echo: true})
		return err == nil && len(msgs) == 1 && string(msgs[0].Body) == `{"bad":1}`
	})
	if p, _, _ := r.lookup(ctx, dlq); p != "a" {
		t.Errorf("dead-letter queue now on %q, want a", p)
	}
}

// TestFlavorFollowsFileAtRestart: a flavor set through the admin API on a
// pool the configuration also defines is reset by the file at restart; the
// flavor must stop listing the pool, and a queue asking for the flavor,
// now empty, gets ErrFlavorEmpty (a 400), not ErrNoPool (a 503 "try
// again" that never succeeds). A flavor the file names is created.
func TestFlavorFollowsFileAtRestart(t *testing.T) {
	w := newWorld(t)
	a, b := w.memPool("a", 100), w.memPool("b", 100)
	r := w.router(a, b)
	if _, err := r.PutFlavor(ctx, FlavorSpec{Name: "gold", Pools: []string{"b"}}); err != nil {
		t.Fatal(err)
	}
	r.Close()

	r = w.router(a, b) // the file says b has no flavor
	if p, _ := r.GetPool("b"); p.Flavor != "" {
		t.Errorf("pool b's flavor %q after restart, want the file's (none)", p.Flavor)
	}
	if f, err := r.GetFlavor("gold"); err != nil || len(f.Pools) != 0 {
		t.Errorf("flavor gold after restart: %+v, %v; want it listing no pool", f, err)
	}
	q := index.QueueRef{Project: "p", Name: "stranded"}
	_, err := r.CreateQueue(ctx, q, json.RawMessage(`{"_flavor":"gold"}`))
	if !errors.Is(err, ErrFlavorEmpty) || errors.Is(err, ErrNoPool) {
		t.Errorf("queue of the empty flavor: %v, want ErrFlavorEmpty and not ErrNoPool", err)
	}
	r.Close()

	// The registry keeps what Open wrote: a third start reads it back.
	r = w.router(a, b)
	if f, _ := r.GetFlavor("gold"); len(f.Pools) != 0 {
		t.Errorf("flavor gold after a second restart lists %v", f.Pools)
	}
	r.Close()

	b.Flavor = "silver" // a flavor only the file names
	r = w.router(a, b)
	defer r.Close()
	if f, err := r.GetFlavor("silver"); err != nil || !slices.Equal(f.Pools, []string{"b"}) {
		t.Fatalf("flavor silver from the file: %+v, %v; want it listing b", f, err)
	}
	if _, err := r.CreateQueue(ctx, q, json.RawMessage(`{"_flavor":"silver"}`)); err != nil {
		t.Fatal(err)
	}
	if p, _, _ := r.lookup(ctx, q); p != "b" {
		t.Errorf("queue of flavor silver on %q, want b", p)
	}
}

// TestPutPoolFlavorListed: a pool given a flavor with PUT /v2/pools shows in
// the flavor's pool_list, and a pool in two flavors ends in the one put last.
func TestPutPoolFlavorListed(t *testing.T) {
	w := newWorld(t)
	a, b, c := w.memPool("a", 100), w.memPool("b", 100), w.memPool("c", 100)
	r := w.router(a, b, c)
	defer r.Close()
	if _, err := r.PutFlavor(ctx, FlavorSpec{Name: "gold", Pools: []string{"b"}}); err != nil {
		t.Fatal(err)
	}
	c.Flavor = "gold"
	if _, err := r.PutPool(ctx, c); err != nil {
		t.Fatal(err)
	}
	if f, _ := r.GetFlavor("gold"); !slices.Equal(f.Pools, []string{"b", "c"}) {
		t.Errorf("gold lists %v, want [b c]", f.Pools)
	}
	if _, err := r.PutFlavor(ctx, FlavorSpec{Name: "silver", Pools: []string{"c"}}); err != nil {
		t.Fatal(err)
	}
	g, _ := r.GetFlavor("gold")
	s, _ := r.GetFlavor("silver")
	if p, _ := r.GetPool("c"); p.Flavor != "silver" || !slices.Equal(g.Pools, []string{"b"}) || !slices.Equal(s.Pools, []string{"c"}) {
		t.Errorf("after putting silver [c]: c in %q, gold %v, silver %v; want c in silver only", p.Flavor, g.Pools, s.Pools)
	}
}

func TestURIAllowed(t *testing.T) {
	allow := []string{"file:///srv/cistern", "swift+http://swift.example:8080/auth/v1.0", "s3+http://MinIO:9000/"}
	cases := []struct {
		uri  string
		want bool
	}{
		{"file:///srv/cistern", true},
		{"file:///srv/cistern/fast", true},
		{"file:///srv/cistern/fast/../slow", true},
		{"file:///srv/cistern-evil", false},
		{"file:///srv/cistern/../../etc", false},
		{"file:///etc/cistern", false},
		{"file://otherhost/srv/cistern", false},
		{"swift+http://swift.example:8080/auth/v1.0", true},
		{"swift+http://swift.example:8080/auth/v2", false},
		{"swift+http://169.254.169.254/auth/v1.0", false},
		{"swift+https://swift.example:8080/auth/v1.0", false},
		{"s3+http://minio:9000/other-bucket", true},
		{"s3+http://user@minio:9000/b", false},
		{"s3:///bucket", false},
		{"mem:x", false},
		{"::not a uri", false},
	}
	for _, tc := range cases {
		if got := uriAllowed(tc.uri, allow); got != tc.want {
			t.Errorf("uriAllowed(%q) = %v, want %v", tc.uri, got, tc.want)
		}
	}
	if !uriAllowed("file:///anywhere", []string{AllowAnyURI}) {
		t.Errorf("%q does not allow any uri", AllowAnyURI)
	}
}

// TestPutPoolOutsideAllowList: with the default allow-list (the configured
// pools' URIs) the admin API cannot point a pool anywhere else; inside it,
// it can.
func TestPutPoolOutsideAllowList(t *testing.T) {
	w := newWorld(t)
	w.allow = nil
	a := w.memPool("a", 100)
	dir := t.TempDir()
	a.URI = "file://" + dir + "/a"
	w.stores[a.URI] = memdriver.New()
	r := w.router(a)
	outside := "file://" + dir + "/elsewhere"
	w.stores[outside] = memdriver.New()
	if _, err := r.PutPool(ctx, PoolSpec{Name: "b", URI: outside, Weight: 10}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "pool_uri_allow") {
		t.Errorf("pool outside the allow-list: %v, want ErrInvalid naming pool_uri_allow", err)
	}
	if _, err := r.GetPool("b"); !errors.Is(err, ErrPoolNotFound) {
		t.Errorf("refused pool is registered: %v", err)
	}
	inside := a.URI + "/b"
	w.stores[inside] = memdriver.New()
	if _, err := r.PutPool(ctx, PoolSpec{Name: "b", URI: inside, Weight: 10}); err != nil {
		t.Errorf("pool under the control pool's folder: %v", err)
	}
	if _, err := r.PatchPool(ctx, "b", PoolPatch{URI: &outside}); !errors.Is(err, ErrInvalid) {
		t.Errorf("PATCH to a uri outside the allow-list: %v", err)
	}
}

// A pool that the registry has and the configuration file does not (added
// through the admin API, or removed from the file) is opened, and the log
// says where it came from.
func TestRegistryPoolNamedAtStart(t *testing.T) {
	w := newWorld(t)
	a, b, c := w.memPool("a", 100), w.memPool("b", 100), w.memPool("c", 100)
	w.router(a, b, c).Close()
	var logs bytes.Buffer
	r, err := Open(ctx, Options{
		Pools: []PoolSpec{a, c},
		Open:  w.open,
		NewEngine: func(ctx context.Context, name string, s drivers.Store) (*index.Engine, error) {
			return index.Open(ctx, index.Options{Store: s, Logger: zerolog.Nop()})
		},
		Logger: zerolog.New(&logs),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if len(r.Pools()) != 3 {
		t.Fatalf("pools after restart: %+v", r.Pools())
	}
	if !strings.Contains(logs.String(), `"pool":"b"`) || !strings.Contains(logs.String(), "from the registry") {
		t.Errorf("start-up log does not say that pool b came from the registry:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), `"pool":"c","message":"pool opened from the registry`) {
		t.Errorf("pool c, from the file, reported as from the registry:\n%s", logs.String())
	}
}
