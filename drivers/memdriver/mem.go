// Package memdriver is an in-memory drivers.Store for unit tests, with hooks
// for fault injection and request counting. It is never a production store:
// nothing survives the process.
package memdriver

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/cistern-mq/cistern/drivers"
)

// Op names a store verb, for fault injection and counting.
type Op string

// The verbs.
const (
	OpPut             Op = "put"
	OpGet             Op = "get"
	OpHead            Op = "head"
	OpDelete          Op = "delete"
	OpDeleteKeys      Op = "delete_keys"
	OpList            Op = "list"
	OpCreateContainer Op = "create_container"
	OpDeleteContainer Op = "delete_container"
	OpListContainers  Op = "list_containers"
)

// Fault decides, before a request runs, whether it fails: return a non-nil
// error to fail it (nothing is changed). It must be safe for concurrent use.
type Fault func(op Op, container, key string) error

// Store is the in-memory store. The zero value is not usable; call New.
type Store struct {
	mu         sync.Mutex
	containers map[string]map[string]object
	fault      Fault
	counts     map[Op]int64
	now        func() time.Time
	// PutHook, when set, is called after a put is stored and before it
	// returns (with mu released); tests use it to add latency or to block.
	putHook func(ctx context.Context, container, key string)
}

type object struct {
	data    []byte
	modTime time.Time
}

// New returns an empty store.
func New() *Store {
	return &Store{
		containers: map[string]map[string]object{},
		counts:     map[Op]int64{},
		now:        time.Now,
	}
}

// SetFault installs (or, with nil, removes) a fault injector.
func (s *Store) SetFault(f Fault) {
	s.mu.Lock()
	s.fault = f
	s.mu.Unlock()
}

// SetPutHook installs a function that runs after every successful put,
// before Put returns; it may sleep (simulated latency) or block.
func (s *Store) SetPutHook(h func(ctx context.Context, container, key string)) {
	s.mu.Lock()
	s.putHook = h
	s.mu.Unlock()
}

// Count returns how many requests of op reached the store.
func (s *Store) Count(op Op) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[op]
}

// Counts returns a copy of all request counts.
func (s *Store) Counts() map[Op]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[Op]int64, len(s.counts))
	for k, v := range s.counts {
		m[k] = v
	}
	return m
}

// begin checks ctx and arguments, counts the request and applies the fault
// injector; it returns with s.mu held when err is nil.
func (s *Store) begin(ctx context.Context, op Op, container, key string, checkKey bool) error {
	if err := drivers.CtxErr(ctx, string(op)); err != nil {
		return err
	}
	if err := drivers.ValidContainer(container); err != nil {
		return err
	}
	if checkKey {
		if err := drivers.ValidKey(key); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.counts[op]++
	if s.fault != nil {
		f := s.fault
		s.mu.Unlock()
		if err := f(op, container, key); err != nil {
			return err
		}
		s.mu.Lock()
	}
	return nil
}

// Put implements drivers.Store.
func (s *Store) Put(ctx context.Context, container, key string, data []byte, opts *drivers.PutOptions) error {
	if err := s.begin(ctx, OpPut, container, key, true); err != nil {
		return err
	}
	c, ok := s.containers[container]
	if !ok {
		s.mu.Unlock()
		return drivers.Errorf(drivers.ErrNotFound, "put %s/%s: no such container", container, key)
	}
	if opts != nil && opts.CreateOnly {
		if _, exists := c[key]; exists {
			s.mu.Unlock()
			return drivers.Errorf(drivers.ErrPreconditionFailed, "put %s/%s: key exists", container, key)
		}
	}
	c[key] = object{data: slices.Clone(data), modTime: s.now()}
	hook := s.putHook
	s.mu.Unlock()
	if hook != nil {
		hook(ctx, container, key)
	}
	return nil
}

// Get implements drivers.Store.
func (s *Store) Get(ctx context.Context, container, key string, opts *drivers.GetOptions) ([]byte, error) {
	var r *drivers.Range
	if opts != nil {
		r = opts.Range
	}
	if err := drivers.ValidRange(r); err != nil {
		return nil, err
	}
	if err := s.begin(ctx, OpGet, container, key, true); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	o, ok := s.containers[container][key]
	if !ok {
		return nil, drivers.Errorf(drivers.ErrNotFound, "get %s/%s", container, key)
	}
	return drivers.SliceRange(o.data, r)
}

// Head implements drivers.Store.
func (s *Store) Head(ctx context.Context, container, key string) (drivers.Attrs, error) {
	if err := s.begin(ctx, OpHead, container, key, true); err != nil {
		return drivers.Attrs{}, err
	}
	defer s.mu.Unlock()
	o, ok := s.containers[container][key]
	if !ok {
		return drivers.Attrs{}, drivers.Errorf(drivers.ErrNotFound, "head %s/%s", container, key)
	}
	return drivers.Attrs{Size: int64(len(o.data)), ModTime: o.modTime}, nil
}

// Delete implements drivers.Store.
func (s *Store) Delete(ctx context.Context, container, key string) error {
	if err := s.begin(ctx, OpDelete, container, key, true); err != nil {
		return err
	}
	defer s.mu.Unlock()
	delete(s.containers[container], key)
	return nil
}

// DeleteKeys implements drivers.BatchDeleter: one request per call.
func (s *Store) DeleteKeys(ctx context.Context, container string, keys []string) error {
	for _, k := range keys {
		if err := drivers.ValidKey(k); err != nil {
			return err
		}
	}
	if err := s.begin(ctx, OpDeleteKeys, container, "", false); err != nil {
		return err
	}
	defer s.mu.Unlock()
	for _, k := range keys {
		delete(s.containers[container], k)
	}
	return nil
}

// List implements drivers.Store.
func (s *Store) List(ctx context.Context, container string, opts *drivers.ListOptions) (drivers.Page, error) {
	o := drivers.CheckListOptions(opts)
	if err := s.begin(ctx, OpList, container, "", false); err != nil {
		return drivers.Page{}, err
	}
	defer s.mu.Unlock()
	c, ok := s.containers[container]
	if !ok {
		return drivers.Page{}, drivers.Errorf(drivers.ErrNotFound, "list %s", container)
	}
	infos := make([]drivers.ObjectInfo, 0, len(c))
	for k, v := range c {
		infos = append(infos, drivers.ObjectInfo{Key: k, Size: int64(len(v.data))})
	}
	return drivers.PageOf(infos, o), nil
}

// CreateContainer implements drivers.Store.
func (s *Store) CreateContainer(ctx context.Context, container string) error {
	if err := s.begin(ctx, OpCreateContainer, container, "", false); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.containers[container]; !ok {
		s.containers[container] = map[string]object{}
	}
	return nil
}

// DeleteContainer implements drivers.Store.
func (s *Store) DeleteContainer(ctx context.Context, container string) error {
	if err := s.begin(ctx, OpDeleteContainer, container, "", false); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if len(s.containers[container]) > 0 {
		return drivers.Errorf(drivers.ErrPreconditionFailed, "delete container %s: not empty", container)
	}
	delete(s.containers, container)
	return nil
}

// ListContainers implements drivers.Store.
func (s *Store) ListContainers(ctx context.Context, opts *drivers.ListOptions) (drivers.Page, error) {
	o := drivers.CheckListOptions(opts)
	if err := drivers.CtxErr(ctx, "list containers"); err != nil {
		return drivers.Page{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts[OpListContainers]++
	infos := make([]drivers.ObjectInfo, 0, len(s.containers))
	for name := range s.containers {
		infos = append(infos, drivers.ObjectInfo{Key: name})
	}
	return drivers.PageOf(infos, o), nil
}

// Capabilities implements drivers.Store.
func (s *Store) Capabilities() drivers.Capabilities {
	return drivers.Capabilities{Driver: "mem", CreateOnly: drivers.CreateOnlyAtomic, ConsistentList: true, BatchDelete: true}
}

// Close implements drivers.Store.
func (s *Store) Close() error { return nil }

var _ drivers.BatchDeleter = (*Store)(nil)
