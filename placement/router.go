// Package placement serves queues from several pools: it records where each
// queue lives (a catalog in the control container of the first pool), places
// new queues with the ring, keeps the registry of pools and flavors (Zaqar's
// admin API) in the object store, and moves queues between pools with a
// resumable migration. docs/pools.md is the operator's view.
package placement

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/rs/zerolog"

	"github.com/cistern-mq/cistern/drivers"
	"github.com/cistern-mq/cistern/index"
	"github.com/cistern-mq/cistern/ring"
)

// Errors of the registry, for errors.Is.
var (
	ErrPoolNotFound    = errors.New("pool does not exist")
	ErrPoolInUse       = errors.New("pool still holds queues")
	ErrPoolUnreachable = errors.New("pool store cannot be opened")
	ErrFlavorNotFound  = errors.New("flavor does not exist")
	ErrInvalid         = errors.New("invalid pool or flavor")
	ErrNoPool          = errors.New("no pool can take the queue")
	// ErrFlavorEmpty: the flavor a new queue asks for exists but none of
	// its pools can take queues. Only an operator can change that, so it
	// is the request's error (4xx), not a retryable one.
	ErrFlavorEmpty = errors.New("flavor has no pool that takes queues")
)

// PoolError is a failure to open one pool's store. It matches
// ErrPoolUnreachable and wraps the driver's error, so that callers can tell
// a store that is not up yet (drivers.ErrUnavailable) from one that refuses
// its credentials (drivers.ErrAuth) and name the pool while they wait.
type PoolError struct {
	Pool string
	Err  error
}

func (e *PoolError) Error() string {
	return fmt.Sprintf("%v: pool %q: %v", ErrPoolUnreachable, e.Pool, e.Err)
}

// Is makes errors.Is(err, ErrPoolUnreachable) hold.
func (e *PoolError) Is(target error) bool { return target == ErrPoolUnreachable }

// Unwrap gives the driver's error.
func (e *PoolError) Unwrap() error { return e.Err }

// PoolSpec is one pool as the registry keeps it and the admin API shows
// it: Zaqar's fields (uri, weight, flavor, options).
type PoolSpec struct {
	Name    string          `json:"name"`
	URI     string          `json:"uri"`
	Weight  int64           `json:"weight"`
	Flavor  string          `json:"flavor,omitempty"`
	Options json.RawMessage `json:"options,omitempty"`
}

// FlavorSpec is one flavor: a named set of pools a queue can ask for with
// its _flavor metadata.
type FlavorSpec struct {
	Name         string          `json:"name"`
	Pools        []string        `json:"pool_list"`
	Capabilities json.RawMessage `json:"capabilities,omitempty"`
}

// Opener opens the store a pool spec names; the command supplies it, so
// this package needs no driver.
type Opener func(ctx context.Context, spec PoolSpec) (drivers.Store, error)

// EngineFactory starts the queue engine of one pool.
type EngineFactory func(ctx context.Context, pool string, s drivers.Store) (*index.Engine, error)

// Options configure a Router.
type Options struct {
	// Pools from the configuration; the first is the control pool, which
	// holds the registry, the placement catalog and the ring. Pools added
	// through the admin API are in the registry and opened at start too.
	Pools     []PoolSpec
	Open      Opener
	NewEngine EngineFactory
	// Seed and PartPower shape the ring (defaults 0 and 16); keep them
	// fixed for the life of a deployment.
	Seed      uint64
	PartPower uint8
	Logger    zerolog.Logger
	// CacheSize bounds the placement cache (default 100,000 queues).
	CacheSize int
	// URIAllow lists the URI prefixes a pool put through the admin API
	// may have (uriallow.go); empty: the URIs of Pools. AllowAnyURI
	// allows any.
	URIAllow []string
	// Cluster: several nodes serve these pools (cluster.go); the admin
	// API's registry changes and migrations are refused.
	Cluster bool
}

// pool is one open pool.
type pool struct {
	spec   PoolSpec
	store  drivers.Store
	engine *index.Engine
}

// Router serves every queue from the pool it lives on. It has the queue
// methods of index.Engine, so the HTTP server uses either.
type Router struct {
	opts    Options
	log     zerolog.Logger
	control drivers.Store

	mu      sync.RWMutex
	pools   map[string]*pool
	flavors map[string]FlavorSpec
	ring    atomic.Pointer[ring.Set]
	cache   *lru.Cache[index.QueueRef, string]
	// controlPool is the name of the first pool, whose store holds the
	// registry and the placement records (placing.go).
	controlPool string
	// spread: placement records may exist (placing.go's marker).
	spread   atomic.Bool
	spreadMu sync.Mutex
	// placing serializes the placing and making of new queues, by stripe.
	placing    [placeStripes]sync.Mutex
	stripeSeed maphash.Seed
	// adminMu serializes registry changes and the ring rebuilds they cause.
	adminMu sync.Mutex

	mig *migrator
	wg  sync.WaitGroup
	// dead is where moves to dead-letter queues post; nil: the router.
	dead atomic.Pointer[index.DeadLetterPoster]
}

// The control container of the first pool (the engine's, index.ControlContainer)
// holds, beside the engine's own catalog of that pool's queues, the
// records below; <ref key> is index.RefKey.
const (
	controlContainer = index.ControlContainer
	placementPrefix  = "placement/" // placement/<ref key> -> {"pool"}, for a queue not on this pool (placing.go)
	poolsPrefix      = "pools/"     // pools/<name> -> PoolSpec
	flavorsPrefix    = "flavors/"   // flavors/<name> -> FlavorSpec
	ringKey          = "ring"       // the ring, ring.Set.MarshalBinary
	migratingPrefix  = "migrating/" // migrating/<ref key> -> {"from","to"}
)

// Open opens every pool (configured or registered), rebuilds the ring and
// resumes migrations that a crash interrupted.
func Open(ctx context.Context, o Options) (_ *Router, err error) {
	if len(o.Pools) == 0 || o.Open == nil || o.NewEngine == nil {
		return nil, errors.New("placement: Options need pools, an opener and an engine factory")
	}
	if o.CacheSize <= 0 {
		o.CacheSize = 100_000
	}
	if len(o.URIAllow) == 0 {
		for _, s := range o.Pools {
			o.URIAllow = append(o.URIAllow, s.URI)
		}
	}
	cache, _ := lru.New[index.QueueRef, string](o.CacheSize)
	r := &Router{opts: o, log: o.Logger, pools: map[string]*pool{}, flavors: map[string]FlavorSpec{}, cache: cache,
		controlPool: o.Pools[0].Name, stripeSeed: maphash.MakeSeed()}
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
	first := o.Pools[0]
	if err := r.openPool(ctx, first); err != nil {
		return nil, err
	}
	r.control = r.pools[first.Name].store
	if err := r.control.CreateContainer(ctx, controlContainer); err != nil {
		return nil, &PoolError{Pool: first.Name, Err: err}
	}
	if err := r.loadSpread(ctx); err != nil {
		return nil, fmt.Errorf("placement: read the placement marker: %w", err)
	}
	// The registry, with the configured pools written over what it says of
	// the same names: the configuration wins.
	registered, err := listRecords(ctx, r.control, poolsPrefix, decodePoolSpec)
	if err != nil {
		return nil, fmt.Errorf("placement: read pool registry: %w", err)
	}
	specs := map[string]PoolSpec{}
	for _, s := range registered {
		specs[s.Name] = s
	}
	for _, s := range o.Pools {
		old, ok := specs[s.Name]
		if ok && !sameSpec(old, s) {
			r.log.Warn().Str("pool", s.Name).
				Str("registry_flavor", old.Flavor).Str("file_flavor", s.Flavor).
				Int64("registry_weight", old.Weight).Int64("file_weight", s.Weight).
				Bool("store_changed", old.URI != s.URI || string(old.Options) != string(s.Options)).
				Msg("the configuration file overrides what the admin API set for this pool")
		}
		if !ok || !sameSpec(old, s) {
			if err := putJSON(ctx, r.control, poolsPrefix+s.Name, s); err != nil {
				return nil, err
			}
		}
		specs[s.Name] = s
	}
	inFile := map[string]bool{}
	for _, s := range o.Pools {
		inFile[s.Name] = true
	}
	for _, s := range specs {
		if s.Name == first.Name {
			continue
		}
		if !inFile[s.Name] {
			// Added through the admin API, or removed from the file: the
			// registry keeps it either way, so say where it comes from.
			r.log.Info().Str("pool", s.Name).
				Msg("pool opened from the registry, not the configuration file; DELETE /v2/pools/" + s.Name + " removes it")
		}
		if err := r.openPool(ctx, s); err != nil {
			return nil, err
		}
	}
	flavors, err := listRecords(ctx, r.control, flavorsPrefix, decodeFlavorSpec)
	if err != nil {
		return nil, fmt.Errorf("placement: read flavors: %w", err)
	}
	for _, f := range flavors {
		r.flavors[f.Name] = f
	}
	if err := r.syncFlavors(ctx, true); err != nil {
		return nil, err
	}
	if err := r.rebuildRing(ctx); err != nil {
		return nil, err
	}
	r.mig = newMigrator(r)
	if o.Cluster {
		// Every node would resume it at once: finish it in single-node
		// mode first (docs/cluster.md).
		if n, _ := listRecords(ctx, r.control, migratingPrefix, func([]byte) (struct{}, error) { return struct{}{}, nil }); len(n) > 0 {
			r.log.Warn().Int("queues", len(n)).Msg("a migration was interrupted; cluster mode does not resume it: run one node without -etcd to finish it")
		}
	} else {
		r.wg.Go(func() { r.mig.resume(context.Background()) })
	}
	return r, nil
}

func sameSpec(a, b PoolSpec) bool {
	return a.URI == b.URI && a.Weight == b.Weight && a.Flavor == b.Flavor && string(a.Options) == string(b.Options)
}

func (r *Router) openPool(ctx context.Context, s PoolSpec) error {
	if err := validPoolName(s.Name); err != nil {
		return err
	}
	st, err := r.opts.Open(ctx, s)
	if err != nil {
		return &PoolError{Pool: s.Name, Err: err}
	}
	e, err := r.opts.NewEngine(ctx, s.Name, st)
	if err != nil {
		st.Close()
		return &PoolError{Pool: s.Name, Err: err}
	}
	e.SetDeadLetters(r.deadLetters())
	r.mu.Lock()
	r.pools[s.Name] = &pool{spec: s, store: st, engine: e}
	r.mu.Unlock()
	return nil
}

func validPoolName(name string) error {
	if name == "" || len(name) > 64 || strings.ContainsAny(name, "/%") {
		return fmt.Errorf("%w: pool name %q: want 1 to 64 characters without '/' or '%%'", ErrInvalid, name)
	}
	return nil
}

// Close stops migrations, every engine and store.
func (r *Router) Close() error {
	if r.mig != nil {
		r.mig.stop()
	}
	r.wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.pools {
		p.engine.Close()
		p.store.Close()
	}
	r.pools = map[string]*pool{}
	return nil
}

// rebuildRing builds the ring from the registry and the ring saved in the
// store, and saves it when it changed. Callers hold adminMu or are Open.
func (r *Router) rebuildRing(ctx context.Context) error {
	var prev *ring.Set
	data, err := r.control.Get(ctx, controlContainer, ringKey, nil)
	switch {
	case err == nil:
		prev = new(ring.Set)
		if err := prev.UnmarshalBinary(data); err != nil {
			r.log.Error().Err(err).Msg("saved ring does not decode; building a new one")
			prev = nil
		}
	case !errors.Is(err, drivers.ErrNotFound):
		return err
	}
	b, err := ring.NewBuilder(prev, &ring.Options{Seed: r.opts.Seed, PartPower: r.opts.PartPower})
	if err != nil {
		return err
	}
	r.mu.RLock()
	for _, p := range r.pools {
		w := float64(p.spec.Weight)
		if err := b.SetPool(ring.Pool{ID: ring.PoolID(p.spec.Name), Weight: w, Group: p.spec.Flavor}); err != nil {
			r.mu.RUnlock()
			return err
		}
	}
	r.mu.RUnlock()
	set, err := b.Rebalance()
	if err != nil {
		return err
	}
	if prev == nil || set.Version() != prev.Version() {
		out, err := set.MarshalBinary()
		if err != nil {
			return err
		}
		if err := r.control.Put(ctx, controlContainer, ringKey, out, nil); err != nil {
			return err
		}
		if prev != nil {
			for _, g := range set.Groups() {
				if old := prev.Ring(g); old != nil {
					r.log.Info().Str("group", g).Int("moved_partitions", set.Ring(g).Moved(old)).Msg("ring rebalanced")
				}
			}
		}
	}
	r.ring.Store(set)
	return nil
}

// Ring returns the ring in force.
func (r *Router) Ring() *ring.Set { return r.ring.Load() }

func flavorOf(meta json.RawMessage) string {
	var m struct {
		Flavor string `json:"_flavor"`
	}
	_ = json.Unmarshal(meta, &m)
	return m.Flavor
}

// Pools returns the registered pools, by name.
func (r *Router) Pools() []PoolSpec {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]PoolSpec, 0, len(r.pools))
	for _, p := range r.pools {
		out = append(out, p.spec)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// engines returns every pool's engine, by pool name.
func (r *Router) engines() []*index.Engine {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.pools))
	for n := range r.pools {
		names = append(names, n)
	}
	slices.Sort(names)
	out := make([]*index.Engine, len(names))
	for i, n := range names {
		out[i] = r.pools[n].engine
	}
	return out
}

func putJSON(ctx context.Context, s drivers.Store, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.Put(ctx, controlContainer, key, data, nil)
}

// getRecord reads one record and decodes it with decode.
func getRecord[T any](ctx context.Context, s drivers.Store, key string, decode func([]byte) (T, error)) (T, error) {
	data, err := s.Get(ctx, controlContainer, key, nil)
	if err != nil {
		var zero T
		return zero, err
	}
	return decode(data)
}

// listRecords reads every record under prefix.
func listRecords[T any](ctx context.Context, s drivers.Store, prefix string, decode func([]byte) (T, error)) ([]T, error) {
	var out []T
	marker := ""
	for {
		p, err := s.List(ctx, controlContainer, &drivers.ListOptions{Prefix: prefix, Marker: marker})
		if err != nil {
			return nil, err
		}
		for _, o := range p.Objects {
			v, err := getRecord(ctx, s, o.Key, decode)
			if errors.Is(err, drivers.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", o.Key, err)
			}
			out = append(out, v)
		}
		if p.Next == "" {
			return out, nil
		}
		marker = p.Next
	}
}

// PoolDepth is what one pool holds in memory.
type PoolDepth struct {
	Pool     string
	Queues   int // loaded queues
	Messages int // live messages in them
	// The engine's journal: objects kept, and batches not folded into
	// their queues yet (index.Engine.JournalStats).
	JournalObjects, JournalBatches int
}

// Depths reports every pool's loaded queues and live messages.
// QueueDepths returns, by pool, each queue's depth as its engine reports
// it (index.Engine.QueueDepths).
func (r *Router) QueueDepths() map[string][]index.QueueDepth {
	r.mu.RLock()
	pools := make([]*pool, 0, len(r.pools))
	for _, p := range r.pools {
		pools = append(pools, p)
	}
	r.mu.RUnlock()
	out := make(map[string][]index.QueueDepth, len(pools))
	for _, p := range pools {
		out[p.spec.Name] = p.engine.QueueDepths()
	}
	return out
}

func (r *Router) Depths() []PoolDepth {
	r.mu.RLock()
	pools := make([]*pool, 0, len(r.pools))
	for _, p := range r.pools {
		pools = append(pools, p)
	}
	r.mu.RUnlock()
	out := make([]PoolDepth, 0, len(pools))
	for _, p := range pools {
		q, m := p.engine.Depth()
		jo, jb := p.engine.JournalStats()
		out = append(out, PoolDepth{Pool: p.spec.Name, Queues: q, Messages: m, JournalObjects: jo, JournalBatches: jb})
	}
	return out
}
