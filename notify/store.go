package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cistern-mq/cistern/drivers"
	"github.com/cistern-mq/cistern/index"
)

// Store keeps subscriptions in one object store's control container. It is
// safe for concurrent use; it holds nothing in memory.
type Store struct {
	st  drivers.Store
	now func() time.Time
}

// NewStore makes the control container if needed. now is the clock of
// subscription ages and expiry (nil: time.Now).
func NewStore(ctx context.Context, st drivers.Store, now func() time.Time) (*Store, error) {
	if now == nil {
		now = time.Now
	}
	if err := st.CreateContainer(ctx, controlContainer); err != nil {
		return nil, fmt.Errorf("notify: %w", err)
	}
	return &Store{st: st, now: now}, nil
}

// Now is the store's clock.
func (s *Store) Now() time.Time { return s.now() }

// Create subscribes subscriber to ref. When the queue already has a live
// subscription for subscriber, it returns that one and created false.
func (s *Store) Create(ctx context.Context, ref index.QueueRef, subscriber string, ttl int64, options json.RawMessage) (sub Subscription, created bool, err error) {
	now := s.now()
	sub = Subscription{ID: NewID(), Queue: ref, Subscriber: subscriber, TTL: ttl, Options: options,
		Created: now, Expires: now.Add(time.Duration(ttl) * time.Second)}
	won, err := s.claimSubscriber(ctx, ref, subscriber, sub.ID)
	if err != nil {
		return Subscription{}, false, err
	}
	if !won.Valid() || won != sub.ID {
		old, err := s.Get(ctx, ref, won)
		if err == nil {
			return old, false, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return Subscription{}, false, err
		}
		// The subscription the index names is gone (expired, or a crash
		// between the two puts): the subscriber is free again.
		if err := s.st.Put(ctx, controlContainer, subscriberKey(ref, subscriber), []byte(sub.ID), nil); err != nil {
			return Subscription{}, false, err
		}
	}
	if err := s.put(ctx, sub); err != nil {
		return Subscription{}, false, err
	}
	return sub, true, nil
}

// claimSubscriber writes the uniqueness record of subscriber create-only
// and returns the id it names: id when this call wrote it.
func (s *Store) claimSubscriber(ctx context.Context, ref index.QueueRef, subscriber string, id ID) (ID, error) {
	key := subscriberKey(ref, subscriber)
	err := s.st.Put(ctx, controlContainer, key, []byte(id), &drivers.PutOptions{CreateOnly: true})
	switch {
	case err == nil:
		return id, nil
	case errors.Is(err, drivers.ErrPreconditionFailed):
	case errors.Is(err, drivers.ErrNotSupported):
		// A store that cannot refuse an overwrite (S3 through Swift's
		// s3api): read first, as best effort, under one writer per store.
		data, gerr := s.st.Get(ctx, controlContainer, key, nil)
		if errors.Is(gerr, drivers.ErrNotFound) {
			return id, s.st.Put(ctx, controlContainer, key, []byte(id), nil)
		}
		if gerr != nil {
			return "", gerr
		}
		return ID(data), nil
	default:
		return "", err
	}
	data, err := s.st.Get(ctx, controlContainer, key, nil)
	if errors.Is(err, drivers.ErrNotFound) {
		return s.claimSubscriber(ctx, ref, subscriber, id) // deleted meanwhile
	}
	if err != nil {
		return "", err
	}
	return ID(data), nil
}

func (s *Store) put(ctx context.Context, sub Subscription) error {
	data, err := encodeRecord(sub)
	if err != nil {
		return err
	}
	return s.st.Put(ctx, controlContainer, subKey(sub.Queue, sub.ID), data, nil)
}

// Get returns a live subscription, or ErrNotFound.
func (s *Store) Get(ctx context.Context, ref index.QueueRef, id ID) (Subscription, error) {
	if !id.Valid() {
		return Subscription{}, ErrNotFound
	}
	data, err := s.st.Get(ctx, controlContainer, subKey(ref, id), nil)
	if errors.Is(err, drivers.ErrNotFound) {
		return Subscription{}, ErrNotFound
	}
	if err != nil {
		return Subscription{}, err
	}
	sub, err := decodeRecord(data)
	if err != nil {
		return Subscription{}, fmt.Errorf("subscription %s of %s: %w", id, ref, err)
	}
	if sub.Queue != ref || sub.ID != id {
		return Subscription{}, fmt.Errorf("subscription %s of %s: %w: names %s of %s", id, ref, errCorrupt, sub.ID, sub.Queue)
	}
	if !sub.Expires.After(s.now()) {
		_ = s.remove(ctx, sub) // best effort: the next reader tries again
		return Subscription{}, ErrNotFound
	}
	return sub, nil
}

// List returns up to limit live subscriptions of ref with ids after
// marker, in id order.
func (s *Store) List(ctx context.Context, ref index.QueueRef, marker ID, limit int) ([]Subscription, error) {
	prefix := queuePrefix(subsPrefix, ref)
	after := ""
	if marker != "" {
		after = prefix + string(marker)
	}
	var out []Subscription
	for len(out) < limit {
		page, err := s.st.List(ctx, controlContainer, &drivers.ListOptions{Prefix: prefix, Marker: after, Limit: limit})
		if errors.Is(err, drivers.ErrNotFound) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		for _, o := range page.Objects {
			after = o.Key
			_, id, ok := parseSubKey(o.Key)
			if !ok || len(out) >= limit {
				continue
			}
			sub, err := s.Get(ctx, ref, id)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			out = append(out, sub)
		}
		if page.Next == "" {
			break
		}
		after = max(after, page.Next)
	}
	return out, nil
}

// Patch is a change to a subscription; nil fields stay as they are.
type Patch struct {
	Subscriber *string
	TTL        *int64
	Options    json.RawMessage
	Confirmed  *bool
}

// Update applies p and returns the subscription as it now is. A new
// subscriber that the queue already has gives ErrExists; a new TTL counts
// from now, as in Zaqar.
func (s *Store) Update(ctx context.Context, ref index.QueueRef, id ID, p Patch) (Subscription, error) {
	sub, err := s.update(ctx, ref, id, p)
	if err != nil {
		return Subscription{}, err
	}
	return sub, nil
}

func (s *Store) update(ctx context.Context, ref index.QueueRef, id ID, p Patch) (Subscription, error) {
	sub, err := s.Get(ctx, ref, id)
	if err != nil {
		return sub, err
	}
	oldSubscriber := sub.Subscriber
	if p.Subscriber != nil && *p.Subscriber != sub.Subscriber {
		won, err := s.claimSubscriber(ctx, ref, *p.Subscriber, id)
		if err != nil {
			return sub, err
		}
		if won != id {
			if _, err := s.Get(ctx, ref, won); err == nil {
				return sub, ErrExists
			} else if !errors.Is(err, ErrNotFound) {
				return sub, err
			}
			if err := s.st.Put(ctx, controlContainer, subscriberKey(ref, *p.Subscriber), []byte(id), nil); err != nil {
				return sub, err
			}
		}
		sub.Subscriber = *p.Subscriber
	}
	if p.TTL != nil {
		sub.TTL = *p.TTL
		sub.Expires = s.now().Add(time.Duration(sub.TTL) * time.Second)
	}
	if p.Options != nil {
		sub.Options = p.Options
	}
	if p.Confirmed != nil {
		if *p.Confirmed && !sub.Confirmed {
			sub.ConfirmedAt = s.now()
		}
		sub.Confirmed = *p.Confirmed
	}
	if err := s.put(ctx, sub); err != nil {
		return sub, err
	}
	if sub.Subscriber != oldSubscriber {
		return sub, s.releaseSubscriber(ctx, ref, oldSubscriber, id)
	}
	return sub, nil
}

// releaseSubscriber deletes the uniqueness record of subscriber if it
// still names id.
func (s *Store) releaseSubscriber(ctx context.Context, ref index.QueueRef, subscriber string, id ID) error {
	key := subscriberKey(ref, subscriber)
	data, err := s.st.Get(ctx, controlContainer, key, nil)
	if errors.Is(err, drivers.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if ID(data) != id {
		return nil
	}
	return s.st.Delete(ctx, controlContainer, key)
}

// Delete removes a subscription and its cursor; a missing one is not an
// error.
func (s *Store) Delete(ctx context.Context, ref index.QueueRef, id ID) error {
	if !id.Valid() {
		return nil
	}
	data, err := s.st.Get(ctx, controlContainer, subKey(ref, id), nil)
	if errors.Is(err, drivers.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	sub, err := decodeRecord(data)
	if err != nil {
		// Unreadable: remove what the key names, the record itself.
		return s.st.Delete(ctx, controlContainer, subKey(ref, id))
	}
	return s.remove(ctx, sub)
}

// remove deletes sub's records: the subscription first, so that a crash
// midway leaves at worst a uniqueness record naming nothing (Create
// takes it over) or a cursor of nothing (DeleteAll and the deliverer
// ignore it).
func (s *Store) remove(ctx context.Context, sub Subscription) error {
	if err := s.st.Delete(ctx, controlContainer, subKey(sub.Queue, sub.ID)); err != nil {
		return err
	}
	if err := s.releaseSubscriber(ctx, sub.Queue, sub.Subscriber, sub.ID); err != nil {
		return err
	}
	return s.st.Delete(ctx, controlContainer, cursorKey(sub.Queue, sub.ID))
}

// DeleteAll removes every subscription of ref (queue delete, purge).
func (s *Store) DeleteAll(ctx context.Context, ref index.QueueRef) error {
	for _, kind := range []string{subsPrefix, subscriberPrefix, cursorPrefix} {
		prefix := queuePrefix(kind, ref)
		marker := ""
		for {
			page, err := s.st.List(ctx, controlContainer, &drivers.ListOptions{Prefix: prefix, Marker: marker})
			if errors.Is(err, drivers.ErrNotFound) {
				break
			}
			if err != nil {
				return err
			}
			keys := make([]string, 0, len(page.Objects))
			for _, o := range page.Objects {
				keys = append(keys, o.Key)
			}
			if err := drivers.DeleteMany(ctx, s.st, controlContainer, keys); err != nil {
				return err
			}
			if page.Next == "" {
				break
			}
			marker = page.Next
		}
	}
	return nil
}

// Each calls f with the queue and id of every stored subscription, in key
// order, live or not (f reads what it needs with Get). It stops at f's
// first error.
func (s *Store) Each(ctx context.Context, f func(ref index.QueueRef, id ID) error) error {
	marker := ""
	for {
		page, err := s.st.List(ctx, controlContainer, &drivers.ListOptions{Prefix: subsPrefix, Marker: marker})
		if errors.Is(err, drivers.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, o := range page.Objects {
			if ref, id, ok := parseSubKey(o.Key); ok {
				if err := f(ref, id); err != nil {
					return err
				}
			}
		}
		if page.Next == "" {
			return nil
		}
		marker = page.Next
	}
}

// Cursor returns how far delivery to a subscription got (zero before the
// first delivery).
func (s *Store) Cursor(ctx context.Context, ref index.QueueRef, id ID) (Cursor, error) {
	data, err := s.st.Get(ctx, controlContainer, cursorKey(ref, id), nil)
	if errors.Is(err, drivers.ErrNotFound) {
		return Cursor{}, nil
	}
	if err != nil {
		return Cursor{}, err
	}
	var c Cursor
	if err := json.Unmarshal(data, &c); err != nil {
		return Cursor{}, fmt.Errorf("cursor of %s of %s: %w: %v", id, ref, errCorrupt, err)
	}
	return c, nil
}

// SetCursor records that delivery to a subscription got to c; it returns
// once the store has it.
func (s *Store) SetCursor(ctx context.Context, ref index.QueueRef, id ID, c Cursor) error {
	data, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return s.st.Put(ctx, controlContainer, cursorKey(ref, id), data, nil)
}
