// Package faultstore wraps a drivers.Store and injects faults into its
// requests, by rule and by seed, so that tests can prove what the engine and
// the server promise when the store misbehaves: no acknowledged write lost,
// no wrong body served, 503 while the store is down, recovery on its own.
//
// Contract: with no rule active and neither switch on, a Store is the store
// underneath, verb for verb (it passes drivers/drivertest). Every fault it
// injects keeps the drivers error contract: an injected error is of exactly
// one drivers kind, or a context error when the caller's context ended. The
// faults are:
//
//   - Fail: the request does not reach the store and returns Rule.Err.
//   - LostAnswer: the request reaches the store and lands, then returns
//     Rule.Err, as when a connection resets after the store wrote.
//   - Delay: the request waits Rule.Latency (through Options.Sleep) first.
//   - Timeout: the request waits Rule.Latency, or until the caller's
//     context ends, and fails without reaching the store: an unavailable
//     error wrapping context.DeadlineExceeded, as a driver's own request
//     timeout gives, or the context's error.
//   - Torn: a get returns a prefix of the object (at least one byte short).
//   - Flip: a get returns the object with one byte changed.
//
// And two switches a test turns on and off: SetDown fails every request
// with drivers.ErrUnavailable; SetFull fails every put and container
// creation the way the fs driver does on a full disk (drivers.ErrUnavailable
// wrapping syscall.ENOSPC) while reads and deletes still work.
//
// Which request a rule hits is decided by its filters (verbs, container and
// key prefixes), its probability drawn from one math/rand/v2 source seeded
// by Options.Seed, and its optional count of hits. Requests from many
// goroutines draw from the source in the order they take its lock, so a
// seed fixes the sequence of draws, not which goroutine gets which.
package faultstore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cistern-mq/cistern/drivers"
)

// Verb names a store request, for rules.
type Verb string

// The verbs of drivers.Store (and drivers.BatchDeleter).
const (
	Put             Verb = "put"
	Get             Verb = "get"
	Head            Verb = "head"
	Delete          Verb = "delete"
	DeleteKeys      Verb = "delete_keys"
	List            Verb = "list"
	CreateContainer Verb = "create_container"
	DeleteContainer Verb = "delete_container"
	ListContainers  Verb = "list_containers"
)

// Effect is what a rule does to a request it hits.
type Effect int

// The effects; the package comment says what each does.
const (
	Fail Effect = iota
	LostAnswer
	Delay
	Timeout
	Torn
	Flip
)

func (e Effect) String() string {
	switch e {
	case Fail:
		return "fail"
	case LostAnswer:
		return "lost-answer"
	case Delay:
		return "delay"
	case Timeout:
		return "timeout"
	case Torn:
		return "torn"
	case Flip:
		return "flip"
	}
	return fmt.Sprintf("Effect(%d)", int(e))
}

// Rule says which requests get which fault. The zero filters match every
// request: a Rule{} fails every request with drivers.ErrUnavailable.
type Rule struct {
	// Name identifies the rule for Remove; it need not be unique.
	Name string
	// Verbs the rule applies to; none means all. Torn and Flip apply to
	// gets only, whatever Verbs says.
	Verbs []Verb
	// ContainerPrefix and KeyPrefix restrict the rule to containers and
	// keys that start with them. A verb without a key (lists, containers)
	// matches any KeyPrefix only when KeyPrefix is empty; List matches
	// when its Prefix option starts with KeyPrefix.
	ContainerPrefix string
	KeyPrefix       string
	// Gets restricts the rule's gets to whole-object reads (the engine's
	// recovery) or to ranged reads (its body reads); GetsAll hits both.
	Gets GetFilter
	// Prob is the chance that a matching request is hit, in (0, 1];
	// 0 means always.
	Prob float64
	// Count, when positive, retires the rule after that many hits ("the
	// next N calls").
	Count  int
	Effect Effect
	// Err is the error of Fail and LostAnswer: a drivers kind such as
	// drivers.ErrInvalid. Nil means drivers.ErrUnavailable.
	Err error
	// Latency is the wait of Delay and Timeout.
	Latency time.Duration
}

// GetFilter selects gets by whether they ask for a range.
type GetFilter int

// The filters.
const (
	GetsAll GetFilter = iota
	GetsWhole
	GetsRanged
)

// Options configure a Store. The zero value is usable.
type Options struct {
	// Seed seeds the source of every probability and of which byte Torn
	// and Flip change.
	Seed uint64
	// Sleep waits d or until ctx ends, whichever is first, returning
	// ctx's error in the second case. Default: a real timer. Tests pass a
	// fake to inject latency without waiting for it.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Store is a drivers.Store with faults. It implements drivers.BatchDeleter
// whether or not the store underneath does, falling back the same way
// drivers.DeleteMany does. Safe for concurrent use.
type Store struct {
	s     drivers.Store
	sleep func(ctx context.Context, d time.Duration) error

	mu     sync.Mutex
	rng    *rand.Rand
	rules  []*active
	down   bool
	full   bool
	counts map[Effect]int64
}

// active is a rule with its hits so far.
type active struct {
	Rule
	hits int
}

// New wraps s.
func New(s drivers.Store, o Options) *Store {
	f := &Store{s: s, sleep: o.Sleep, rng: rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15)), counts: map[Effect]int64{}}
	if f.sleep == nil {
		f.sleep = sleep
	}
	return f
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Unwrap returns the store underneath.
func (f *Store) Unwrap() drivers.Store { return f.s }

// Add activates a rule, after those already active: the first rule that
// hits a request decides its fault.
func (f *Store) Add(r Rule) {
	f.mu.Lock()
	f.rules = append(f.rules, &active{Rule: r})
	f.mu.Unlock()
}

// Remove retires every rule named name.
func (f *Store) Remove(name string) {
	f.mu.Lock()
	f.rules = slices.DeleteFunc(f.rules, func(a *active) bool { return a.Name == name })
	f.mu.Unlock()
}

// Clear retires every rule and turns both switches off: the store is
// healthy again.
func (f *Store) Clear() {
	f.mu.Lock()
	f.rules, f.down, f.full = nil, false, false
	f.mu.Unlock()
}

// SetDown makes every request fail with drivers.ErrUnavailable (on) or
// lets them through to the rules again (off).
func (f *Store) SetDown(on bool) {
	f.mu.Lock()
	f.down = on
	f.mu.Unlock()
}

// SetFull makes puts and container creations fail as on a full disk.
func (f *Store) SetFull(on bool) {
	f.mu.Lock()
	f.full = on
	f.mu.Unlock()
}

// Injected returns how many requests got each effect so far.
func (f *Store) Injected() map[Effect]int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.counts)
}

// ErrDown is the cause of every error while the store is down.
var ErrDown = errors.New("faultstore: store is down")

// fault is the decision for one request.
type fault struct {
	effect  Effect
	err     error // for Fail and LostAnswer, ready to return
	latency time.Duration
	cut     uint64 // a random number for Torn and Flip
	hit     bool
}

// decide picks the fault for one request, or none. key is "" for verbs
// without a key; for List it is the listing's prefix.
func (f *Store) decide(v Verb, container, key string, ranged bool) fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		f.counts[Fail]++
		return fault{hit: true, effect: Fail, err: drivers.Wrap(drivers.ErrUnavailable, ErrDown, "%s %s", v, container)}
	}
	if f.full && (v == Put || v == CreateContainer) {
		f.counts[Fail]++
		// What fsdriver's mapErr makes of ENOSPC.
		return fault{hit: true, effect: Fail, err: drivers.Wrap(drivers.ErrUnavailable, syscall.ENOSPC, "fs %s %s/%.64s", v, container, key)}
	}
	for i, a := range f.rules {
		if !a.matches(v, container, key, ranged) {
			continue
		}
		if a.Prob > 0 && a.Prob < 1 && f.rng.Float64() >= a.Prob {
			continue
		}
		a.hits++
		if a.Count > 0 && a.hits >= a.Count {
			f.rules = slices.Delete(f.rules, i, i+1)
		}
		f.counts[a.Effect]++
		kind := a.Err
		if kind == nil {
			kind = drivers.ErrUnavailable
		}
		return fault{hit: true, effect: a.Effect, latency: a.Latency, cut: f.rng.Uint64(),
			err: drivers.Wrap(kind, nil, "faultstore %s: %s %s/%.64s", a.Effect, v, container, key)}
	}
	return fault{}
}

func (a *active) matches(v Verb, container, key string, ranged bool) bool {
	if (a.Effect == Torn || a.Effect == Flip) && v != Get {
		return false
	}
	if v == Get && (a.Gets == GetsWhole && ranged || a.Gets == GetsRanged && !ranged) {
		return false
	}
	if len(a.Verbs) > 0 && !slices.Contains(a.Verbs, v) {
		return false
	}
	if !strings.HasPrefix(container, a.ContainerPrefix) {
		return false
	}
	return strings.HasPrefix(key, a.KeyPrefix)
}

// before applies the part of a fault that comes before the request: it
// returns a non-nil error when the request must not reach the store.
func (f *Store) before(ctx context.Context, ft fault) error {
	if !ft.hit {
		return nil
	}
	switch ft.effect {
	case Fail:
		return ft.err
	case Delay:
		return f.sleep(ctx, ft.latency)
	case Timeout:
		if err := f.sleep(ctx, ft.latency); err != nil {
			return err
		}
		return drivers.Wrap(drivers.ErrUnavailable, context.DeadlineExceeded, "faultstore: request timed out")
	}
	return nil
}

// after applies the part of a fault that comes after the request landed.
func after(ft fault, err error) error {
	if err == nil && ft.hit && ft.effect == LostAnswer {
		return ft.err
	}
	return err
}

// Put implements drivers.Store.
func (f *Store) Put(ctx context.Context, c, k string, data []byte, o *drivers.PutOptions) error {
	ft := f.decide(Put, c, k, false)
	if err := f.before(ctx, ft); err != nil {
		return err
	}
	return after(ft, f.s.Put(ctx, c, k, data, o))
}

// Get implements drivers.Store. Torn and Flip change a copy: the store
// underneath keeps the object whole.
func (f *Store) Get(ctx context.Context, c, k string, o *drivers.GetOptions) ([]byte, error) {
	ft := f.decide(Get, c, k, o != nil && o.Range != nil)
	if err := f.before(ctx, ft); err != nil {
		return nil, err
	}
	b, err := f.s.Get(ctx, c, k, o)
	if err != nil || !ft.hit {
		return b, err
	}
	switch ft.effect {
	case LostAnswer:
		return nil, ft.err
	case Torn:
		if len(b) > 0 {
			b = b[:ft.cut%uint64(len(b))]
		}
	case Flip:
		if len(b) > 0 {
			b = slices.Clone(b)
			b[ft.cut%uint64(len(b))] ^= 0x20
		}
	}
	return b, nil
}

// Head implements drivers.Store.
func (f *Store) Head(ctx context.Context, c, k string) (drivers.Attrs, error) {
	ft := f.decide(Head, c, k, false)
	if err := f.before(ctx, ft); err != nil {
		return drivers.Attrs{}, err
	}
	a, err := f.s.Head(ctx, c, k)
	if err = after(ft, err); err != nil {
		return drivers.Attrs{}, err
	}
	return a, nil
}

// Delete implements drivers.Store.
func (f *Store) Delete(ctx context.Context, c, k string) error {
	ft := f.decide(Delete, c, k, false)
	if err := f.before(ctx, ft); err != nil {
		return err
	}
	return after(ft, f.s.Delete(ctx, c, k))
}

// DeleteKeys implements drivers.BatchDeleter; a rule's KeyPrefix matches
// when the first key starts with it.
func (f *Store) DeleteKeys(ctx context.Context, c string, keys []string) error {
	if _, ok := f.s.(drivers.BatchDeleter); !ok {
		for _, k := range keys {
			if err := f.Delete(ctx, c, k); err != nil {
				return err
			}
		}
		return nil
	}
	first := ""
	if len(keys) > 0 {
		first = keys[0]
	}
	ft := f.decide(DeleteKeys, c, first, false)
	if err := f.before(ctx, ft); err != nil {
		return err
	}
	return after(ft, drivers.DeleteMany(ctx, f.s, c, keys))
}

// List implements drivers.Store.
func (f *Store) List(ctx context.Context, c string, o *drivers.ListOptions) (drivers.Page, error) {
	prefix := ""
	if o != nil {
		prefix = o.Prefix
	}
	ft := f.decide(List, c, prefix, false)
	if err := f.before(ctx, ft); err != nil {
		return drivers.Page{}, err
	}
	p, err := f.s.List(ctx, c, o)
	if err = after(ft, err); err != nil {
		return drivers.Page{}, err
	}
	return p, nil
}

// CreateContainer implements drivers.Store.
func (f *Store) CreateContainer(ctx context.Context, c string) error {
	ft := f.decide(CreateContainer, c, "", false)
	if err := f.before(ctx, ft); err != nil {
		return err
	}
	return after(ft, f.s.CreateContainer(ctx, c))
}

// DeleteContainer implements drivers.Store.
func (f *Store) DeleteContainer(ctx context.Context, c string) error {
	ft := f.decide(DeleteContainer, c, "", false)
	if err := f.before(ctx, ft); err != nil {
		return err
	}
	return after(ft, f.s.DeleteContainer(ctx, c))
}

// ListContainers implements drivers.Store; a rule's ContainerPrefix
// matches the listing's prefix.
func (f *Store) ListContainers(ctx context.Context, o *drivers.ListOptions) (drivers.Page, error) {
	prefix := ""
	if o != nil {
		prefix = o.Prefix
	}
	ft := f.decide(ListContainers, prefix, "", false)
	if err := f.before(ctx, ft); err != nil {
		return drivers.Page{}, err
	}
	p, err := f.s.ListContainers(ctx, o)
	if err = after(ft, err); err != nil {
		return drivers.Page{}, err
	}
	return p, nil
}

// Capabilities implements drivers.Store.
func (f *Store) Capabilities() drivers.Capabilities { return f.s.Capabilities() }

// Close implements drivers.Store.
func (f *Store) Close() error { return f.s.Close() }

var _ drivers.BatchDeleter = (*Store)(nil)
