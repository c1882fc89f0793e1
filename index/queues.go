package index

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cistern-mq/cistern/drivers"
)

// Settings are the reserved keys of a queue's metadata that the engine acts
// on. The HTTP layer validates them; the engine reads what is there.
type Settings struct {
	DefaultTTL      int64  // _default_message_ttl, seconds (0: the server's default)
	DefaultDelay    int64  // _default_message_delay, seconds
	MaxPostSize     int64  // _max_messages_post_size, bytes (0: the server's)
	MaxClaimCount   int64  // _max_claim_count
	DeadLetterQueue string // _dead_letter_queue
	DeadLetterTTL   int64  // _dead_letter_queue_messages_ttl, seconds
}

// ParseSettings reads the reserved keys out of a metadata object; values of
// the wrong type are ignored.
func ParseSettings(meta json.RawMessage) Settings { return parseSettings(meta) }

func parseSettings(meta json.RawMessage) Settings {
	var m map[string]json.RawMessage
	_ = json.Unmarshal(meta, &m)
	num := func(k string) int64 {
		var f float64
		if json.Unmarshal(m[k], &f) != nil {
			return 0
		}
		return int64(f)
	}
	var dlq string
	_ = json.Unmarshal(m["_dead_letter_queue"], &dlq)
	return Settings{
		DefaultTTL:      num("_default_message_ttl"),
		DefaultDelay:    num("_default_message_delay"),
		MaxPostSize:     num("_max_messages_post_size"),
		MaxClaimCount:   num("_max_claim_count"),
		DeadLetterQueue: dlq,
		DeadLetterTTL:   num("_dead_letter_queue_messages_ttl"),
	}
}

// QueueInfo describes a queue.
type QueueInfo struct {
	Name     string
	Created  time.Time
	Metadata json.RawMessage // a JSON object, never nil
}

func emptyObject(meta json.RawMessage) json.RawMessage {
	if len(meta) == 0 || string(meta) == "null" {
		return json.RawMessage(`{}`)
	}
	return meta
}

// createLocked makes the queue in the store: its container, then its
// catalog entry, written create-only so that of two creators one wins and
// the other loads what the winner wrote. With the node's journal the
// queue is made bare (its entry alone: one write), and its container at
// its first fold. Callers hold q.mu.
func (q *queue) createLocked(ctx context.Context, meta json.RawMessage) (created bool, err error) {
	e := q.e
	ent := catalogEntry{Gen: newID(16), Created: e.now(), Metadata: emptyObject(meta), Snap: new(uint64), Cluster: e.fence != nil,
		Bare: e.journal != nil && e.fence == nil}
	data, err := json.Marshal(ent)
	if err != nil {
		return false, err
	}
	container := queueContainer(ent.Gen)
	if !ent.Bare {
		if err := e.store.CreateContainer(ctx, container); err != nil {
			return false, err
		}
	}
	if e.fence != nil {
		return q.createFenced(ctx, ent, data)
	}
	err = e.store.Put(ctx, controlContainer, catalogKey(q.ref), data, &drivers.PutOptions{CreateOnly: e.createOnly})
	e.absent.Remove(q.ref)
	if errors.Is(err, drivers.ErrPreconditionFailed) {
		// Another creator won: load what it wrote.
		if !ent.Bare {
			_ = e.store.DeleteContainer(ctx, container)
		}
		if err := q.load(ctx); err != nil {
			return false, err
		}
		if !q.exists {
			// Refused, yet no entry to read (a store that lags, or
			// lied): nothing was made; the client may try again.
			return false, fmt.Errorf("%w: creating %s was refused, and no catalog entry can be read", drivers.ErrUnavailable, q.ref)
		}
		return false, nil
	}
	if err != nil {
		// The entry may have landed although its answer was lost: its
		// container goes only once the store shows that it did not (a
		// container left behind is a leak; one removed under a live
		// entry is a damaged queue).
		landed, known := q.entryLanded(ctx, ent.Gen)
		switch {
		case landed:
			q.created(ent)
			return true, nil
		case known && !ent.Bare:
			_ = e.store.DeleteContainer(ctx, container)
		}
		return false, err
	}
	q.created(ent)
	return true, nil
}

// entryLanded reads the queue's catalog entry after a write of it failed:
// landed when it names gen; known false when the store cannot tell now.
func (q *queue) entryLanded(ctx context.Context, gen string) (landed, known bool) {
	data, err := q.e.store.Get(ctx, controlContainer, catalogKey(q.ref), nil)
	if errors.Is(err, drivers.ErrNotFound) {
		return false, true
	}
	if err != nil {
		return false, false
	}
	ent, err := decodeCatalogEntry(data)
	if err != nil {
		return false, false // a torn read
	}
	return ent.Gen == gen, true
}

// created makes q the empty queue ent describes.
func (q *queue) created(ent catalogEntry) {
	q.exists = true
	q.entry = ent
	q.settings = parseSettings(ent.Metadata)
	q.container = queueContainer(ent.Gen)
	q.st = newState()
	q.movers = map[uint64]chan struct{}{}
	q.lastLog, q.nextLog, q.durableSeq = 0, 1, 0
	q.lastSnapAt = q.e.now()
}

// CreateQueue creates a queue with the given metadata (a JSON object, or
// nil). created is false when it existed already; its metadata is then left
// as it was, as Zaqar does.
func (e *Engine) CreateQueue(ctx context.Context, ref QueueRef, meta json.RawMessage) (created bool, err error) {
	err = e.withQueue(ctx, ref, func(q *queue) error {
		if q.exists {
			return nil
		}
		created, err = q.createLocked(ctx, meta)
		return err
	})
	return created, err
}

// Queue returns a queue's metadata; exists is false for a queue that was
// never created (Zaqar answers those with the defaults).
func (e *Engine) Queue(ctx context.Context, ref QueueRef) (info QueueInfo, exists bool, err error) {
	err = e.withQueue(ctx, ref, func(q *queue) error {
		exists = q.exists
		info = QueueInfo{Name: ref.Name, Metadata: json.RawMessage(`{}`)}
		if q.exists {
			info.Metadata = q.entry.Metadata
			info.Created = time.Unix(0, q.entry.Created)
		}
		return nil
	})
	return info, exists, err
}

// SetMetadata replaces a queue's metadata. ErrQueueNotFound for a queue
// that does not exist.
func (e *Engine) SetMetadata(ctx context.Context, ref QueueRef, meta json.RawMessage) error {
	return e.withQueue(ctx, ref, func(q *queue) error {
		if !q.exists {
			return ErrQueueNotFound
		}
		ent := q.entry
		ent.Metadata = emptyObject(meta)
		if e.fence != nil {
			if err := q.setMetadataFenced(ctx, ent); err != nil {
				return err
			}
		} else {
			data, err := json.Marshal(ent)
			if err != nil {
				return err
			}
			if err := e.store.Put(ctx, controlContainer, catalogKey(ref), data, nil); err != nil {
				return err
			}
		}
		q.entry = ent
		q.settings = parseSettings(ent.Metadata)
		return nil
	})
}

// DeleteQueue deletes a queue and everything in it. Deleting a missing
// queue is not an error. The catalog entry goes first, so the queue is gone
// at once; its objects are removed in the background, and a trash entry
// written beforehand makes sure a crash does not leave them behind forever.
func (e *Engine) DeleteQueue(ctx context.Context, ref QueueRef) error {
	var container string
	err := e.withQueue(ctx, ref, func(q *queue) error {
		if !q.exists {
			return nil
		}
		if e.fence != nil {
			return q.deleteFenced(ctx, &container)
		}
		if err := e.putTrash(ctx, ref, q.entry.Gen); err != nil {
			return err
		}
		if err := e.store.Delete(ctx, controlContainer, catalogKey(ref)); err != nil {
			return err
		}
		container = q.container
		q.leave(phaseStale)
		if e.journal != nil {
			e.journal.drop(ref)
		}
		return nil
	})
	if errors.Is(err, ErrQueueDamaged) {
		container, err = e.deleteDamaged(ctx, ref)
	}
	if err == nil {
		e.damaged.Remove(ref)
		e.depths.Remove(ref)
	}
	if err == nil && container != "" {
		e.wg.Go(func() { e.removeQueueObjects(context.Background(), container) })
	}
	return err
}

// deleteDamaged deletes a queue that cannot load because its objects are
// missing: its catalog entry goes, as for any queue.
func (e *Engine) deleteDamaged(ctx context.Context, ref QueueRef) (container string, err error) {
	data, err := e.store.Get(ctx, controlContainer, catalogKey(ref), nil)
	if errors.Is(err, drivers.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	var ent catalogEntry
	if err := json.Unmarshal(data, &ent); err != nil || ent.Gen == "" {
		return "", fmt.Errorf("index: catalog entry of %s: %w", ref, errCorrupt)
	}
	if err := e.putTrash(ctx, ref, ent.Gen); err != nil {
		return "", err
	}
	if err := e.store.Delete(ctx, controlContainer, catalogKey(ref)); err != nil {
		return "", err
	}
	e.log.Warn().Str("queue", ref.String()).Msg("deleted a queue whose objects were missing from the store")
	return "q-" + ent.Gen, nil
}

// ListQueues lists a project's queues by name after marker, at most limit.
// With detailed, each carries its metadata.
func (e *Engine) ListQueues(ctx context.Context, project, marker string, limit int, detailed bool) ([]QueueInfo, error) {
	prefix := catalogProjectPrefix(project)
	opts := &drivers.ListOptions{Prefix: prefix, Limit: limit}
	if marker != "" {
		opts.Marker = prefix + marker
	}
	p, err := e.store.List(ctx, controlContainer, opts)
	if err != nil {
		return nil, err
	}
	out := make([]QueueInfo, 0, len(p.Objects))
	for _, o := range p.Objects {
		info := QueueInfo{Name: o.Key[len(prefix):], Metadata: json.RawMessage(`{}`)}
		if detailed {
			// Read the entry, not the queue: listing must not load queues.
			data, err := e.store.Get(ctx, controlContainer, o.Key, nil)
			if errors.Is(err, drivers.ErrNotFound) {
				continue // deleted since the listing
			}
			if err != nil {
				return nil, err
			}
			if ent, err := decodeCatalogEntry(data); err == nil {
				info.Metadata = emptyObject(ent.Metadata)
				info.Created = time.Unix(0, ent.Created)
			}
		}
		out = append(out, info)
	}
	return out, nil
}

// Purge drops every message and claim of a queue.
func (e *Engine) Purge(ctx context.Context, ref QueueRef) error {
	return e.withQueue(ctx, ref, func(q *queue) error {
		if !q.exists {
			return nil
		}
		q.st.applyPurge()
		b := q.batchFor()
		b.w.purge()
		return q.commit(ctx, b)
	})
}

// Stats counts a queue's messages.
type Stats struct {
	Free, Claimed, Delayed, Total int
	// Oldest and Newest are set when Total > 0.
	Oldest, Newest *MessageStat
}

// MessageStat names one message in Stats.
type MessageStat struct {
	ID      string
	Created time.Time
}

// Stats returns a queue's message counts; a missing queue has zeros.
func (e *Engine) Stats(ctx context.Context, ref QueueRef) (Stats, error) {
	var s Stats
	err := e.withQueue(ctx, ref, func(q *queue) error {
		if !q.exists {
			return nil
		}
		now := e.now()
		q.st.msgs.each(0, func(m *msg) bool {
			if m.seq > q.durableSeq {
				return false
			}
			if m.expires <= now || m.flags&flagMoving != 0 {
				return true
			}
			switch {
			case q.st.liveClaim(m, now) != nil:
				s.Claimed++
			case m.visibleAt > now:
				s.Delayed++
			default:
				s.Free++
			}
			st := &MessageStat{ID: q.messageID(m.seq), Created: time.Unix(0, m.created)}
			if s.Oldest == nil {
				s.Oldest = st
			}
			s.Newest = st
			return true
		})
		s.Total = s.Free + s.Claimed + s.Delayed
		return nil
	})
	return s, err
}

// messageID is the message's seq and the first 8 hex digits of the
// queue's generation, so an id never names a message of a queue that was
// deleted and made again.
func (q *queue) messageID(seq uint64) string {
	return fmt.Sprintf("%016x%s", seq, q.entry.Gen[:8])
}

// parseMessageID returns the seq an id names in this queue, or false.
func (q *queue) parseMessageID(id string) (uint64, bool) {
	if len(id) != 24 || !q.exists || id[16:] != q.entry.Gen[:8] {
		return 0, false
	}
	var seq uint64
	for _, c := range []byte(id[:16]) {
		var v byte
		switch {
		case c >= '0' && c <= '9':
			v = c - '0'
		case c >= 'a' && c <= 'f':
			v = c - 'a' + 10
		default:
			return 0, false
		}
		seq = seq<<4 | uint64(v)
	}
	return seq, true
}
