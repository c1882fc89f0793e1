package index

import "time"

// Per-queue depth for metrics (SQS's ApproximateNumberOfMessages and
// ApproximateAgeOfOldestMessage): a loaded queue reports its index as it
// is; a queue the engine unloaded for idleness reports what it held when it
// was unloaded, so that its depth does not fall to zero when nobody touches
// it. While unloaded, nothing can change it but expiry: its messages count
// until the last of them expires, then it reports zero.

// QueueDepth is one queue's depth.
type QueueDepth struct {
	Ref      QueueRef
	Messages int
	// Oldest is the creation time of the oldest live message (zero when
	// the queue is empty).
	Oldest time.Time
	// Loaded is false for a queue reported from what it held when it was
	// unloaded.
	Loaded bool
}

// depthSummary is what the engine remembers of a queue it unloaded.
type depthSummary struct {
	messages int
	oldest   int64 // unix ns; 0 when empty
	lastGone int64 // unix ns when the last of them expires
}

// maxDepthSummaries bounds how many unloaded queues are remembered (about
// 100 bytes each); beyond it, the least recently unloaded are forgotten and
// no longer reported until they load again.
const maxDepthSummaries = 10_000

// summarize records q's depth as it is unloaded. Callers hold q.mu.
func (q *queue) summarize() {
	if !q.exists || q.st == nil {
		return
	}
	now := q.e.now()
	var s depthSummary
	q.st.msgs.each(0, func(m *msg) bool {
		if m.expires <= now || m.flags&flagMoving != 0 {
			return true
		}
		s.messages++
		if s.oldest == 0 {
			s.oldest = m.created
		}
		s.lastGone = max(s.lastGone, m.expires)
		return true
	})
	q.e.depths.Add(q.ref, s)
}

// QueueDepths reports every loaded queue, and every queue unloaded since
// (at most the last maxDepthSummaries) that is not deleted or released.
func (e *Engine) QueueDepths() []QueueDepth {
	now := e.now()
	e.mu.Lock()
	qs := make([]*queue, 0, len(e.queues))
	for _, q := range e.queues {
		qs = append(qs, q)
	}
	e.mu.Unlock()
	loaded := map[QueueRef]bool{}
	var out []QueueDepth
	for _, q := range qs {
		select {
		case <-q.ready:
		default:
			continue
		}
		q.mu.Lock()
		if q.serving() && q.exists {
			// The index's count (what the janitor has not swept yet
			// included, as cistern_queue_messages), and a walk only to
			// the first live message: a scrape must not walk a deep
			// queue under its lock.
			d := QueueDepth{Ref: q.ref, Loaded: true, Messages: q.st.msgs.live}
			q.st.msgs.each(0, func(m *msg) bool {
				if m.expires <= now || m.flags&flagMoving != 0 {
					return true
				}
				d.Oldest = time.Unix(0, m.created)
				return false
			})
			out = append(out, d)
			loaded[q.ref] = true
		}
		q.mu.Unlock()
	}
	for _, ref := range e.depths.Keys() {
		s, ok := e.depths.Peek(ref)
		if !ok || loaded[ref] {
			continue
		}
		d := QueueDepth{Ref: ref}
		if now < s.lastGone {
			d.Messages = s.messages
			if s.oldest != 0 {
				d.Oldest = time.Unix(0, s.oldest)
			}
		}
		out = append(out, d)
	}
	return out
}
