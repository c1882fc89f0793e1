// Package throttle bounds how many requests Cistern has in flight against
// one store at once. With a group commit per queue, a thousand busy queues
// would otherwise send a thousand PUTs at the same moment, and a small Swift
// proxy answers 503 to all of them; in line here they wait their turn, and a
// request whose context ends while it waits gives up without being sent.
package throttle

import (
	"context"

	"github.com/cistern-mq/cistern/drivers"
)

// Store is a drivers.Store that sends at most n requests at once.
type Store struct {
	s   drivers.Store
	sem chan struct{}
}

// New wraps s; n <= 0 means no limit and returns s itself.
func New(s drivers.Store, n int) drivers.Store {
	if n <= 0 {
		return s
	}
	return &Store{s: s, sem: make(chan struct{}, n)}
}

func (t *Store) acquire(ctx context.Context, op string) error {
	select {
	case t.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return drivers.CtxErr(ctx, "throttle "+op)
	}
}

func (t *Store) release() { <-t.sem }

// Put implements drivers.Store.
func (t *Store) Put(ctx context.Context, c, k string, data []byte, o *drivers.PutOptions) error {
	if err := t.acquire(ctx, "put"); err != nil {
		return err
	}
	defer t.release()
	return t.s.Put(ctx, c, k, data, o)
}

// Get implements drivers.Store.
func (t *Store) Get(ctx context.Context, c, k string, o *drivers.GetOptions) ([]byte, error) {
	if err := t.acquire(ctx, "get"); err != nil {
		return nil, err
	}
	defer t.release()
	return t.s.Get(ctx, c, k, o)
}

// Head implements drivers.Store.
func (t *Store) Head(ctx context.Context, c, k string) (drivers.Attrs, error) {
	if err := t.acquire(ctx, "head"); err != nil {
		return drivers.Attrs{}, err
	}
	defer t.release()
	return t.s.Head(ctx, c, k)
}

// Delete implements drivers.Store.
func (t *Store) Delete(ctx context.Context, c, k string) error {
	if err := t.acquire(ctx, "delete"); err != nil {
		return err
	}
	defer t.release()
	return t.s.Delete(ctx, c, k)
}

// DeleteKeys implements drivers.BatchDeleter: one batch is one request
// when the store has batch deletes, else one per key.
func (t *Store) DeleteKeys(ctx context.Context, c string, keys []string) error {
	if _, ok := t.s.(drivers.BatchDeleter); !ok {
		for _, k := range keys {
			if err := t.Delete(ctx, c, k); err != nil {
				return err
			}
		}
		return nil
	}
	if err := t.acquire(ctx, "delete many"); err != nil {
		return err
	}
	defer t.release()
	return drivers.DeleteMany(ctx, t.s, c, keys)
}

// List implements drivers.Store.
func (t *Store) List(ctx context.Context, c string, o *drivers.ListOptions) (drivers.Page, error) {
	if err := t.acquire(ctx, "list"); err != nil {
		return drivers.Page{}, err
	}
	defer t.release()
	return t.s.List(ctx, c, o)
}

// CreateContainer implements drivers.Store.
func (t *Store) CreateContainer(ctx context.Context, c string) error {
	if err := t.acquire(ctx, "create container"); err != nil {
		return err
	}
	defer t.release()
	return t.s.CreateContainer(ctx, c)
}

// DeleteContainer implements drivers.Store.
func (t *Store) DeleteContainer(ctx context.Context, c string) error {
	if err := t.acquire(ctx, "delete container"); err != nil {
		return err
	}
	defer t.release()
	return t.s.DeleteContainer(ctx, c)
}

// ListContainers implements drivers.Store.
func (t *Store) ListContainers(ctx context.Context, o *drivers.ListOptions) (drivers.Page, error) {
	if err := t.acquire(ctx, "list containers"); err != nil {
		return drivers.Page{}, err
	}
	defer t.release()
	return t.s.ListContainers(ctx, o)
}

// Capabilities implements drivers.Store.
func (t *Store) Capabilities() drivers.Capabilities { return t.s.Capabilities() }

// Close implements drivers.Store.
func (t *Store) Close() error { return t.s.Close() }

var _ drivers.BatchDeleter = (*Store)(nil)
