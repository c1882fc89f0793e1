package index

import (
	"context"
	"strconv"
)

// startMovers finishes moves to dead-letter queues recorded in the index.
// Callers hold mu.
func (q *queue) startMovers() {
	for seq := range q.st.moving {
		if q.movers[seq] != nil {
			continue
		}
		done := make(chan struct{})
		q.movers[seq] = done
		q.e.wg.Go(func() { q.move(seq) })
	}
}

// move copies one message to its dead-letter queue, then deletes it here.
// The copy carries its origin, so a copy repeated after a crash between the
// two steps is recognised by the dead-letter queue and not posted twice.
func (q *queue) move(seq uint64) {
	e := q.e
	ctx := context.Background()
	defer func() {
		q.mu.Lock()
		close(q.movers[seq])
		delete(q.movers, seq)
		q.mu.Unlock()
	}()
	q.mu.Lock()
	m := q.st.msgs.find(seq)
	tgt, ok := q.st.moving[seq]
	if m == nil || !ok || !q.serving() {
		q.mu.Unlock()
		return
	}
	loc := q.bodyLoc(m)
	ttl := tgt.ttl
	if ttl <= 0 {
		ttl = (m.expires - e.now()) / 1e9
	}
	client := q.st.clients[m.client]
	origin := q.entry.Gen + "/" + strconv.FormatUint(seq, 10)
	q.mu.Unlock()
	body, err := e.readBody(ctx, loc)
	if err == nil {
		_, err = e.deadLetters().PostMoved(ctx, QueueRef{Project: q.ref.Project, Name: tgt.dlq}, client,
			NewMessage{Body: body, TTL: max(ttl, 1)}, origin)
	}
	if err == nil {
		q.mu.Lock()
		// A frozen queue is being migrated: the moving record travels with
		// its logs, and the queue's new pool finishes the move.
		if m := q.st.msgs.find(seq); m != nil && q.serving() && q.frozen == nil {
			q.st.removeMsg(m)
			b := q.batchFor()
			b.w.delete([]uint64{seq})
			err = q.commit(ctx, b)
		}
		q.mu.Unlock()
	}
	if err != nil {
		e.log.Warn().Err(err).Str("queue", q.ref.String()).Uint64("seq", seq).Str("dlq", tgt.dlq).
			Msg("move to dead-letter queue not finished; it is retried when the queue reloads")
	}
}

// DeadLetterPoster posts a message that is moving to a dead-letter queue.
// The dead-letter queue may live on another pool than the queue it comes
// from, so a router that serves several pools supplies one that routes
// (Engine.SetDeadLetters); without one, the engine posts to its own pool.
// origin names the message moved; a poster must pass it on to
// Engine.PostMoved, which posts each origin once.
type DeadLetterPoster interface {
	PostMoved(ctx context.Context, ref QueueRef, clientID string, msg NewMessage, origin string) (string, error)
}

// SetDeadLetters makes moves to dead-letter queues post through p (see
// DeadLetterPoster). Set it before the engine serves requests.
func (e *Engine) SetDeadLetters(p DeadLetterPoster) { e.dead.Store(&p) }

// deadLetters is where moves post: the poster set, or this engine.
func (e *Engine) deadLetters() DeadLetterPoster {
	if p := e.dead.Load(); p != nil {
		return *p
	}
	return e
}
