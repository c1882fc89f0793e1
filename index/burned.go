package index

import "sync"

// burnedSeqs remembers, for queues whose group commit failed, the first
// message sequence number that was never handed out. A failed batch's
// records are thrown away with the queue's index, but its sequence numbers
// may have reached a client (an id in an error reply) or the store (a write
// that landed although its answer was lost): the reloaded queue starts past
// them, so an id never names two different messages.
//
// It has a lock of its own because failLocked holds a queue's lock, and the
// engine's lock comes before a queue's.
type burnedSeqs struct {
	mu   sync.Mutex
	next map[QueueRef]uint64
}

// raise records that ref's sequence numbers below next are used.
func (b *burnedSeqs) raise(ref QueueRef, next uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.next == nil {
		b.next = map[QueueRef]uint64{}
	}
	b.next[ref] = max(b.next[ref], next)
}

// take returns and forgets ref's first unused sequence number (0: none
// recorded). The queue's next log write makes it durable: a post record
// carries its sequence number, and replay resumes after the highest.
func (b *burnedSeqs) take(ref QueueRef) uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := b.next[ref]
	delete(b.next, ref)
	return n
}
