package index

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// NewMessage is a message to post. Its TTL and delay are as the message
// will have them: the caller (the HTTP layer) applies the queue's and the
// server's defaults and limits, in one place.
type NewMessage struct {
	Body  json.RawMessage
	TTL   int64 // seconds, at least 1
	Delay int64 // seconds, at least 0
}

// Message is a message as the API returns it.
type Message struct {
	ID         string
	Seq        uint64
	Body       json.RawMessage
	TTL        int64 // seconds, from creation to expiry
	Created    time.Time
	Expires    time.Time
	Delayed    bool
	ClaimID    string // "" when not claimed
	ClaimCount int
	ClientID   string
}

// message builds the API view of m (without its body) and where its body
// is. Callers hold q.mu.
func (q *queue) message(m *msg, now int64) (Message, bodyLoc) {
	out := Message{
		ID:         q.messageID(m.seq),
		Seq:        m.seq,
		TTL:        (m.expires - m.created) / 1e9,
		Created:    time.Unix(0, m.created),
		Expires:    time.Unix(0, m.expires),
		Delayed:    m.visibleAt > now,
		ClaimCount: int(m.claimCount),
		ClientID:   q.st.clients[m.client],
	}
	if c := q.st.liveClaim(m, now); c != nil {
		out.ClaimID = c.id
	}
	return out, q.bodyLoc(m)
}

// withBodies fills in the bodies of msgs.
func (e *Engine) withBodies(ctx context.Context, msgs []Message, locs []bodyLoc) ([]Message, error) {
	bodies, err := e.readBodies(ctx, locs)
	if err != nil {
		return nil, err
	}
	for i := range msgs {
		msgs[i].Body = bodies[i]
	}
	return msgs, nil
}

// Post appends messages to a queue, creating the queue if needed, and
// returns their ids in order once they are in the store.
func (e *Engine) Post(ctx context.Context, ref QueueRef, clientID string, msgs []NewMessage) ([]string, error) {
	return e.post(ctx, ref, clientID, msgs, "")
}

// PostMoved posts one message moved from another queue (origin names it)
// to the dead-letter queue ref on this engine, once: a move repeated after
// a crash finds the origin already there and returns the id it got.
func (e *Engine) PostMoved(ctx context.Context, ref QueueRef, clientID string, msg NewMessage, origin string) (string, error) {
	ids, err := e.post(ctx, ref, clientID, []NewMessage{msg}, origin)
	if err != nil {
		return "", err
	}
	return ids[0], nil
}

func (e *Engine) post(ctx context.Context, ref QueueRef, clientID string, msgs []NewMessage, origin string) ([]string, error) {
	for _, m := range msgs {
		if m.TTL < 1 || m.Delay < 0 {
			return nil, fmt.Errorf("%w: a message needs a TTL of at least 1 s and a delay of at least 0 (got %d, %d)", ErrInvalidMessage, m.TTL, m.Delay)
		}
	}
	var ids []string
	err := e.withQueue(ctx, ref, func(q *queue) error {
		if !q.exists {
			if _, err := q.createLocked(ctx, nil); err != nil {
				return err
			}
		}
		if origin != "" {
			if seq, ok := q.st.origins[origin]; ok {
				ids = []string{q.messageID(seq)} // moved here before a crash
				return nil
			}
		}
		now := e.now()
		b := q.batchFor()
		for _, nm := range msgs {
			r := &postRec{Seq: q.st.nextSeq, Created: now, TTL: nm.TTL, Delay: nm.Delay, Client: clientID, Origin: origin, Body: nm.Body}
			off := b.w.post(r)
			m := q.st.applyPost(r, b.seq, off)
			b.maxMsgSeq = r.Seq
			if e.journal != nil {
				// Its log is a journal section: the body stays in
				// memory until a fold moves it (fold.go).
				q.st.pin(m, nm.Body)
			} else {
				// The body is cached only once its log object is
				// durable (flushLoop): a failed write must not leave it
				// behind.
				b.bodies = append(b.bodies, postedBody{r.Seq, nm.Body})
			}
			ids = append(ids, q.messageID(r.Seq))
		}
		return q.commit(ctx, b)
	})
	return ids, err
}

// ListOptions select messages to list.
type ListOptions struct {
	Marker         uint64 // list messages with seq > Marker
	Limit          int
	Echo           bool   // include the caller's own messages
	ClientID       string // the caller, for Echo
	IncludeClaimed bool
	IncludeDelayed bool
}

// List returns messages in order. A missing queue lists nothing.
func (e *Engine) List(ctx context.Context, ref QueueRef, o ListOptions) ([]Message, error) {
	var out []Message
	var locs []bodyLoc
	err := e.withQueue(ctx, ref, func(q *queue) error {
		if !q.exists {
			return nil
		}
		now := e.now()
		q.st.msgs.each(o.Marker+1, func(m *msg) bool {
			if len(out) >= o.Limit || m.seq > q.durableSeq {
				return false
			}
			if m.expires <= now || m.flags&flagMoving != 0 ||
				!o.IncludeDelayed && m.visibleAt > now ||
				!o.IncludeClaimed && q.st.liveClaim(m, now) != nil ||
				!o.Echo && q.st.clients[m.client] == o.ClientID {
				return true
			}
			msg, loc := q.message(m, now)
			out = append(out, msg)
			locs = append(locs, loc)
			return true
		})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return e.withBodies(ctx, out, locs)
}

// GetMessages returns the messages among ids that exist, in the order
// asked.
func (e *Engine) GetMessages(ctx context.Context, ref QueueRef, ids []string) ([]Message, error) {
	var out []Message
	var locs []bodyLoc
	err := e.withQueue(ctx, ref, func(q *queue) error {
		now := e.now()
		for _, id := range ids {
			seq, ok := q.parseMessageID(id)
			if !ok || seq > q.durableSeq {
				continue
			}
			m := q.st.msgs.find(seq)
			if m == nil || m.expires <= now || m.flags&flagMoving != 0 {
				continue
			}
			msg, loc := q.message(m, now)
			out = append(out, msg)
			locs = append(locs, loc)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return e.withBodies(ctx, out, locs)
}

// DeleteMessage deletes one message. With claimID the message must be in
// that live claim; without, it must not be in any. A message that does
// not exist is not an error.
func (e *Engine) DeleteMessage(ctx context.Context, ref QueueRef, id, claimID string) error {
	return e.withQueue(ctx, ref, func(q *queue) error {
		seq, ok := q.parseMessageID(id)
		if !ok {
			return nil
		}
		m := q.st.msgs.find(seq)
		now := e.now()
		if m == nil || m.expires <= now || m.flags&flagMoving != 0 {
			return nil
		}
		c := q.st.liveClaim(m, now)
		switch {
		case claimID == "" && c != nil:
			return ErrMessageClaimed
		case claimID != "" && c == nil:
			return ErrMessageNotClaimed
		case claimID != "" && c.id != claimID:
			if other := q.st.findClaim(claimID, now); other == nil {
				return ErrClaimUnknown
			}
			return ErrMessageNotClaimedBy
		}
		q.st.removeMsg(m)
		e.bodies.remove(bodyKey{q.container, seq})
		b := q.batchFor()
		b.w.delete([]uint64{seq})
		return q.commit(ctx, b)
	})
}

// DeleteMessages deletes the messages among ids that exist, claimed or
// not (as Zaqar does for deletes by ids).
func (e *Engine) DeleteMessages(ctx context.Context, ref QueueRef, ids []string) error {
	return e.withQueue(ctx, ref, func(q *queue) error {
		var seqs []uint64
		for _, id := range ids {
			if seq, ok := q.parseMessageID(id); ok {
				if m := q.st.msgs.find(seq); m != nil && m.flags&flagMoving == 0 {
					seqs = append(seqs, seq)
				}
			}
		}
		if len(seqs) == 0 {
			return nil
		}
		q.st.applyDelete(seqs)
		for _, s := range seqs {
			e.bodies.remove(bodyKey{q.container, s})
		}
		b := q.batchFor()
		b.w.delete(seqs)
		return q.commit(ctx, b)
	})
}

// claimable reports whether a claim or a pop may take m at now.
func (q *queue) claimable(m *msg, now int64) bool {
	return m.expires > now && m.visibleAt <= now && m.flags&flagMoving == 0 && q.st.liveClaim(m, now) == nil
}

// Pop deletes and returns up to n of the oldest free messages: delivery at
// most once.
func (e *Engine) Pop(ctx context.Context, ref QueueRef, n int) ([]Message, error) {
	var out []Message
	var locs []bodyLoc
	var b *batch
	var q *queue
	err := e.withQueue(ctx, ref, func(qq *queue) error {
		q = qq
		if !q.exists {
			return nil
		}
		now := e.now()
		var seqs []uint64
		q.st.msgs.each(0, func(m *msg) bool {
			if len(seqs) >= n {
				return false
			}
			if q.claimable(m, now) {
				msg, loc := q.message(m, now)
				out = append(out, msg)
				locs = append(locs, loc)
				seqs = append(seqs, m.seq)
			}
			return true
		})
		if len(seqs) == 0 {
			return nil
		}
		q.st.applyDelete(seqs)
		b = q.batchFor()
		b.w.delete(seqs)
		q.startFlush()
		return nil
	})
	if err != nil || b == nil {
		return nil, err
	}
	// Read the bodies while the delete is being written: once it is, the
	// log objects holding them may be collected.
	out, rerr := e.withBodies(ctx, out, locs)
	select {
	case <-b.done:
		err = b.err
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		return nil, err
	}
	for _, l := range locs {
		e.bodies.remove(bodyKey{l.container, l.seq})
	}
	return out, rerr
}

// ClaimOptions shape a claim.
type ClaimOptions struct {
	TTL   int64 // seconds
	Grace int64 // seconds
	Limit int
}

// Claim is a lease on messages.
type Claim struct {
	ID       string
	Created  time.Time
	Expires  time.Time
	TTL      int64
	Grace    int64
	Messages []Message
}

// maxMovesPerClaim bounds how many poison messages one claim moves aside.
const maxMovesPerClaim = 100

// Claim leases up to o.Limit of the oldest free messages. It returns nil
// when there is nothing to claim. With _max_claim_count and
// _dead_letter_queue set, a message already claimed that many times is
// moved to the dead-letter queue instead of being handed out again.
func (e *Engine) Claim(ctx context.Context, ref QueueRef, o ClaimOptions) (*Claim, error) {
	var out *Claim
	var locs []bodyLoc
	var moves []chan struct{}
	err := e.withQueue(ctx, ref, func(q *queue) error {
		if !q.exists {
			return nil
		}
		now := e.now()
		set := q.settings
		dlq := set.MaxClaimCount > 0 && set.DeadLetterQueue != "" && set.DeadLetterQueue != ref.Name
		var seqs, moving []uint64
		q.st.msgs.each(0, func(m *msg) bool {
			if len(seqs) >= o.Limit || len(moving) >= maxMovesPerClaim {
				return false
			}
			if !q.claimable(m, now) {
				return true
			}
			if dlq && int64(m.claimCount) >= set.MaxClaimCount {
				moving = append(moving, m.seq)
			} else {
				seqs = append(seqs, m.seq)
			}
			return true
		})
		if len(seqs) == 0 && len(moving) == 0 {
			return nil
		}
		b := q.batchFor()
		if len(moving) > 0 {
			r := &movingRec{DLQ: set.DeadLetterQueue, TTL: set.DeadLetterTTL, Seqs: moving}
			q.st.applyMoving(r)
			b.w.moving(r)
			b.moving = true
		}
		if len(seqs) > 0 {
			r := &claimRec{ID: newID(12), Created: now, TTL: o.TTL, Grace: o.Grace, Seqs: seqs}
			q.st.applyClaim(r)
			b.w.claim(r)
			out = &Claim{ID: r.ID, Created: time.Unix(0, now), Expires: time.Unix(0, now+o.TTL*1e9), TTL: o.TTL, Grace: o.Grace}
			for _, s := range seqs {
				msg, loc := q.message(q.st.msgs.find(s), now)
				out.Messages = append(out.Messages, msg)
				locs = append(locs, loc)
			}
		}
		if err := q.commit(ctx, b); err != nil {
			return err
		}
		// The moves started once the batch was durable: the claim
		// answers once they are done, so that the dead-letter queue
		// shows what this claim moved there (as Zaqar's does).
		for _, seq := range moving {
			if ch := q.movers[seq]; ch != nil {
				moves = append(moves, ch)
			}
		}
		return nil
	})
	for _, ch := range moves {
		select {
		case <-ch:
		case <-ctx.Done():
			// The move goes on; the claim still answers.
		}
	}
	if err != nil || out == nil {
		return nil, err
	}
	if out.Messages, err = e.withBodies(ctx, out.Messages, locs); err != nil {
		return nil, err
	}
	return out, nil
}

// GetClaim returns a live claim and its messages.
func (e *Engine) GetClaim(ctx context.Context, ref QueueRef, id string) (*Claim, error) {
	var out *Claim
	var locs []bodyLoc
	err := e.withQueue(ctx, ref, func(q *queue) error {
		if !q.exists {
			return ErrClaimNotFound
		}
		now := e.now()
		i, ok := q.st.claimIDs[id]
		if !ok || q.st.claims[i].expires <= now {
			return ErrClaimNotFound
		}
		c := &q.st.claims[i]
		out = &Claim{ID: c.id, Created: time.Unix(0, c.created), Expires: time.Unix(0, c.expires), TTL: c.ttl, Grace: c.grace}
		for _, s := range c.seqs {
			if m := q.st.msgs.find(s); m != nil && m.expires > now {
				msg, loc := q.message(m, now)
				out.Messages = append(out.Messages, msg)
				locs = append(locs, loc)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if out.Messages, err = e.withBodies(ctx, out.Messages, locs); err != nil {
		return nil, err
	}
	return out, nil
}

// RenewClaim gives a live claim a new ttl and grace from now, and stretches
// its messages' lives to outlast it.
func (e *Engine) RenewClaim(ctx context.Context, ref QueueRef, id string, ttl, grace int64) error {
	return e.withQueue(ctx, ref, func(q *queue) error {
		if !q.exists {
			return ErrClaimNotFound
		}
		now := e.now()
		i, ok := q.st.claimIDs[id]
		if !ok || q.st.claims[i].expires <= now {
			return ErrClaimNotFound
		}
		r := &renewRec{ID: id, Updated: now, TTL: ttl, Grace: grace}
		q.st.applyRenew(r)
		b := q.batchFor()
		b.w.renew(r)
		return q.commit(ctx, b)
	})
}

// ReleaseClaim ends a claim; its messages are free again. Releasing a claim
// that does not exist is not an error.
func (e *Engine) ReleaseClaim(ctx context.Context, ref QueueRef, id string) error {
	return e.withQueue(ctx, ref, func(q *queue) error {
		if !q.exists {
			return nil
		}
		if _, ok := q.st.claimIDs[id]; !ok {
			return nil
		}
		q.st.applyRelease(id)
		b := q.batchFor()
		b.w.release(id)
		return q.commit(ctx, b)
	})
}
