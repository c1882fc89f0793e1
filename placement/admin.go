package placement

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/cistern-mq/cistern/drivers"
)

// The registry of pools and flavors, as Zaqar's admin API manages it. Every
// change is written to the control container and rebuilds the ring.

// PutPool creates or updates a pool (Zaqar's PUT is an upsert). The store
// is opened first: a pool that cannot be reached is refused.
func (r *Router) PutPool(ctx context.Context, s PoolSpec) (created bool, err error) {
	if err := r.clusterRefusal("changing pools"); err != nil {
		return false, err
	}
	if err := validPoolName(s.Name); err != nil {
		return false, err
	}
	if s.Weight < 0 || s.URI == "" {
		return false, fmt.Errorf("%w: a pool needs a uri and a weight >= 0", ErrInvalid)
	}
	r.adminMu.Lock()
	defer r.adminMu.Unlock()
	r.mu.RLock()
	current, known := r.pools[s.Name]
	r.mu.RUnlock()
	if !known || current.spec.URI != s.URI {
		if err := r.checkURI(s.URI); err != nil {
			return false, err
		}
	}
	if s.Flavor != "" {
		r.mu.RLock()
		_, ok := r.flavors[s.Flavor]
		r.mu.RUnlock()
		if !ok {
			return false, fmt.Errorf("%w: %q", ErrFlavorNotFound, s.Flavor)
		}
	}
	r.mu.RLock()
	old, exists := r.pools[s.Name]
	r.mu.RUnlock()
	switch {
	case !exists:
		if err := r.openPool(ctx, s); err != nil {
			return false, err
		}
	case old.spec.URI != s.URI || string(old.spec.Options) != string(s.Options):
		if s.Name == r.controlPool {
			return false, fmt.Errorf("%w: the control pool's store cannot change while it serves", ErrInvalid)
		}
		if inUse, err := old.engine.HasQueues(ctx); err != nil || inUse {
			return false, fmt.Errorf("%w: its store cannot change while queues live there", ErrPoolInUse)
		}
		st, err := r.opts.Open(ctx, s)
		if err != nil {
			return false, &PoolError{Pool: s.Name, Err: err}
		}
		e, err := r.opts.NewEngine(ctx, s.Name, st)
		if err != nil {
			st.Close()
			return false, err
		}
		e.SetDeadLetters(r.deadLetters())
		r.mu.Lock()
		r.pools[s.Name] = &pool{spec: s, store: st, engine: e}
		r.mu.Unlock()
		old.engine.Close()
		old.store.Close()
	default:
		r.mu.Lock()
		r.pools[s.Name].spec = s
		r.mu.Unlock()
	}
	if err := putJSON(ctx, r.control, poolsPrefix+s.Name, s); err != nil {
		return false, err
	}
	if err := r.syncFlavors(ctx, false); err != nil {
		return false, err
	}
	return !exists, r.rebuildRing(ctx)
}

// GetPool returns a pool.
func (r *Router) GetPool(name string) (PoolSpec, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	p, ok := r.pools[name]
	if !ok {
		return PoolSpec{}, fmt.Errorf("%w: %q", ErrPoolNotFound, name)
	}
	return p.spec, nil
}

// PoolPatch changes some of a pool's fields.
type PoolPatch struct {
	URI     *string
	Weight  *int64
	Flavor  *string
	Options json.RawMessage
}

// PatchPool updates the fields given.
func (r *Router) PatchPool(ctx context.Context, name string, p PoolPatch) (PoolSpec, error) {
	if err := r.clusterRefusal("changing pools"); err != nil {
		return PoolSpec{}, err
	}
	s, err := r.GetPool(name)
	if err != nil {
		return PoolSpec{}, err
	}
	if p.URI != nil {
		s.URI = *p.URI
	}
	if p.Weight != nil {
		s.Weight = *p.Weight
	}
	if p.Flavor != nil {
		s.Flavor = *p.Flavor
	}
	if p.Options != nil {
		s.Options = p.Options
	}
	if _, err := r.PutPool(ctx, s); err != nil {
		return PoolSpec{}, err
	}
	return s, nil
}

// DeletePool removes a pool. It is refused while queues live there (move
// them first: set its weight to 0 and migrate), and for the control pool.
func (r *Router) DeletePool(ctx context.Context, name string) error {
	if err := r.clusterRefusal("deleting pools"); err != nil {
		return err
	}
	r.adminMu.Lock()
	defer r.adminMu.Unlock()
	r.mu.RLock()
	p, ok := r.pools[name]
	r.mu.RUnlock()
	if !ok {
		return nil // Zaqar answers 204 for a missing pool
	}
	if name == r.controlPool {
		return fmt.Errorf("%w: %q is the control pool, which holds the registry and the catalog", ErrPoolInUse, name)
	}
	inUse, err := p.engine.HasQueues(ctx)
	if err != nil {
		return err
	}
	if inUse {
		return fmt.Errorf("%w: %q; set its weight to 0 and migrate its queues away first", ErrPoolInUse, name)
	}
	if err := r.control.Delete(ctx, controlContainer, poolsPrefix+name); err != nil {
		return err
	}
	r.mu.Lock()
	delete(r.pools, name)
	r.mu.Unlock()
	p.engine.Close()
	p.store.Close()
	if err := r.syncFlavors(ctx, false); err != nil {
		return err
	}
	return r.rebuildRing(ctx)
}

// ListPools returns pools by name after marker, at most limit.
func (r *Router) ListPools(marker string, limit int) []PoolSpec {
	var out []PoolSpec
	for _, p := range r.Pools() {
		if p.Name > marker && len(out) < limit {
			out = append(out, p)
		}
	}
	return out
}

// PutFlavor creates or replaces a flavor; its pools join the flavor's
// group of the ring.
func (r *Router) PutFlavor(ctx context.Context, f FlavorSpec) (created bool, err error) {
	if err := r.clusterRefusal("changing flavors"); err != nil {
		return false, err
	}
	if err := validPoolName(f.Name); err != nil {
		return false, err
	}
	if len(f.Pools) == 0 {
		return false, fmt.Errorf("%w: a flavor needs a non-empty pool_list", ErrInvalid)
	}
	r.adminMu.Lock()
	defer r.adminMu.Unlock()
	r.mu.RLock()
	for _, name := range f.Pools {
		if _, ok := r.pools[name]; !ok {
			r.mu.RUnlock()
			return false, fmt.Errorf("%w: %q in pool_list", ErrPoolNotFound, name)
		}
	}
	_, exists := r.flavors[f.Name]
	r.mu.RUnlock()
	if err := putJSON(ctx, r.control, flavorsPrefix+f.Name, f); err != nil {
		return false, err
	}
	r.mu.Lock()
	r.flavors[f.Name] = f
	r.mu.Unlock()
	if err := r.regroup(ctx, "", f.Name); err != nil {
		return false, err
	}
	return !exists, nil
}

// regroup sets the flavor of every pool a flavor lists, clears it on pools
// whose flavor no longer lists them (or was deleted), saves the pools that
// changed, drops from other flavors a pool that the flavor just put took
// (a pool has one flavor), then rebuilds the ring. Callers hold adminMu.
func (r *Router) regroup(ctx context.Context, deleted, put string) error {
	r.mu.Lock()
	want := map[string]string{}
	for _, f := range r.flavors {
		if f.Name == put {
			continue
		}
		for _, p := range f.Pools {
			want[p] = f.Name
		}
	}
	for _, p := range r.flavors[put].Pools {
		want[p] = put
	}
	var changed []PoolSpec
	for name, p := range r.pools {
		target, listed := want[name]
		if !listed {
			_, flavorExists := r.flavors[p.spec.Flavor]
			target = p.spec.Flavor
			if flavorExists || p.spec.Flavor == deleted {
				target = ""
			}
		}
		if p.spec.Flavor != target {
			p.spec.Flavor = target
			changed = append(changed, p.spec)
		}
	}
	r.mu.Unlock()
	for _, s := range changed {
		if err := putJSON(ctx, r.control, poolsPrefix+s.Name, s); err != nil {
			return err
		}
	}
	if err := r.syncFlavors(ctx, false); err != nil {
		return err
	}
	return r.rebuildRing(ctx)
}

// syncFlavors makes every flavor's pool_list the pools whose flavor names
// it, the pools' own field being the truth: the configuration file can
// change a pool's flavor behind the registry's back ("the file wins"), and
// a flavor still listing a pool that left it would promise queues a pool
// they never get. A flavor a pool names but the registry lacks (set in the
// file) is created. Changes are saved and logged (as warnings at start,
// where they undo what the admin API set). Callers hold adminMu or are
// Open.
func (r *Router) syncFlavors(ctx context.Context, atStart bool) error {
	r.mu.Lock()
	lists := map[string][]string{}
	for name, p := range r.pools {
		if p.spec.Flavor != "" {
			lists[p.spec.Flavor] = append(lists[p.spec.Flavor], name)
		}
	}
	for name := range r.flavors {
		if _, ok := lists[name]; !ok {
			lists[name] = nil
		}
	}
	var changed []FlavorSpec
	for name, pools := range lists {
		if pools == nil {
			pools = []string{} // "pool_list": [], not null
		}
		sort.Strings(pools)
		f, exists := r.flavors[name]
		old := slices.Clone(f.Pools)
		sort.Strings(old)
		if exists && slices.Equal(old, pools) {
			continue
		}
		ev := r.log.Info()
		if atStart {
			ev = r.log.Warn()
		}
		ev = ev.Str("flavor", name).Strs("pool_list", pools)
		switch {
		case !exists:
			ev.Msg("flavor named by a configured pool created in the registry")
		case atStart:
			ev.Strs("was", f.Pools).Msg("flavor's pool_list made to follow its pools' flavor (the configuration file overrides the registry)")
		default:
			ev.Strs("was", f.Pools).Msg("flavor's pool_list follows its pools' flavor")
		}
		if len(pools) == 0 {
			r.log.Warn().Str("flavor", name).Msg("flavor has no pool: new queues asking for it are refused (400) until a pool joins it")
		}
		f.Name, f.Pools = name, pools
		r.flavors[name] = f
		changed = append(changed, f)
	}
	r.mu.Unlock()
	for _, f := range changed {
		if err := putJSON(ctx, r.control, flavorsPrefix+f.Name, f); err != nil {
			return err
		}
	}
	return nil
}

// GetFlavor returns a flavor.
func (r *Router) GetFlavor(name string) (FlavorSpec, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	f, ok := r.flavors[name]
	if !ok {
		return FlavorSpec{}, fmt.Errorf("%w: %q", ErrFlavorNotFound, name)
	}
	return f, nil
}

// ListFlavors returns flavors by name after marker, at most limit.
func (r *Router) ListFlavors(marker string, limit int) []FlavorSpec {
	r.mu.RLock()
	var all []FlavorSpec
	for _, f := range r.flavors {
		all = append(all, f)
	}
	r.mu.RUnlock()
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	var out []FlavorSpec
	for _, f := range all {
		if f.Name > marker && len(out) < limit {
			out = append(out, f)
		}
	}
	return out
}

// DeleteFlavor removes a flavor; its pools leave its group.
func (r *Router) DeleteFlavor(ctx context.Context, name string) error {
	if err := r.clusterRefusal("deleting flavors"); err != nil {
		return err
	}
	r.adminMu.Lock()
	defer r.adminMu.Unlock()
	if err := r.control.Delete(ctx, controlContainer, flavorsPrefix+name); err != nil && !errors.Is(err, drivers.ErrNotFound) {
		return err
	}
	r.mu.Lock()
	delete(r.flavors, name)
	r.mu.Unlock()
	return r.regroup(ctx, name, "")
}
