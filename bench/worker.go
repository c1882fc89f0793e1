package bench

import (
	"bytes"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"
)

// worker is one producer, consumer or observer: one goroutine, one
// Client-ID, one queue, and its own tally.
type worker struct {
	r *run
	c *Client
	q string
	t *tally
}

// startWorkers starts every worker under wg and returns their tallies,
// which are theirs until wg is done.
func (r *run) startWorkers(wg *sync.WaitGroup) []*tally {
	var tallies []*tally
	roles := []struct {
		n    int
		loop func(*worker)
	}{
		{r.cfg.Producers, (*worker).produce},
		{r.cfg.Consumers, (*worker).consume},
		{r.cfg.Observers, (*worker).observe},
	}
	for _, role := range roles {
		for i := range role.n {
			w := &worker{
				r: r,
				c: NewClient(r.hc, r.cfg.URL, r.cfg.Project, r.cfg.Token),
				q: r.cfg.QueueName(i % r.cfg.Queues),
				t: newTally(),
			}
			tallies = append(tallies, w.t)
			wg.Go(func() { role.loop(w) })
		}
	}
	return tallies
}

// record records a request that began at start (a now() value read
// before it) and has just ended with err, if it falls in the window. It
// reports whether it did.
func (w *worker) record(op Op, start int64, err error) bool {
	end := w.r.now()
	if err != nil && w.r.hard.Err() != nil {
		w.t.aborted++
		return false
	}
	if !w.r.inWindow(start, end) {
		return false
	}
	if err != nil {
		w.t.failure(op, errorClass(err))
	} else {
		w.t.success(op, time.Duration(end-start))
	}
	return true
}

// produce posts batches until the run stops or, when counting messages,
// the count has been posted.
func (w *worker) produce() {
	cfg := &w.r.cfg
	full := messagesDoc(cfg.Batch, cfg.Size, cfg.TTL)
	for !w.r.stopped() {
		start := w.r.now()
		// When counting messages, posts measured in the window take
		// their messages from the budget. The clock was read first, so
		// a post that finds the window not yet open cannot be measured
		// in it (see stamp).
		n, doc, reserved := cfg.Batch, full, false
		if cfg.Messages > 0 && w.r.windowOpen() {
			if n = w.r.reserve(cfg.Batch); n == 0 {
				return
			}
			reserved = true
			if n < cfg.Batch {
				doc = messagesDoc(n, cfg.Size, cfg.TTL)
			}
		}
		err := w.c.PostMessages(w.r.hard, w.q, doc)
		counted := w.record(OpPost, start, err)
		if reserved && (err != nil || !counted) {
			// Give it back: the messages must still be posted in the
			// window (this post began just before it opened, or failed).
			w.r.budget.Add(int64(n))
		}
		if err != nil {
			w.r.pause(cfg.EmptyWait)
			continue
		}
		if counted {
			w.t.posted += int64(n)
			if cfg.Messages > 0 && w.r.posted.Add(int64(n)) >= cfg.Messages {
				w.r.done(0)
			}
		}
	}
}

// reserve takes up to n messages from the budget of a message-count run.
func (r *run) reserve(n int) int {
	for {
		left := r.budget.Load()
		if left <= 0 {
			return 0
		}
		take := min(int64(n), left)
		if r.budget.CompareAndSwap(left, left-take) {
			return int(take)
		}
	}
}

// consumed records messages consumed in the window.
func (w *worker) consumed(n int) {
	w.t.consumed += int64(n)
	if m := w.r.cfg.Messages; m > 0 && w.r.consumed.Add(int64(n)) >= m {
		w.r.done(1)
	}
}

// consume claims and deletes (or pops) until the run stops.
func (w *worker) consume() {
	cfg := &w.r.cfg
	for !w.r.stopped() {
		if cfg.Pop > 0 {
			w.pop()
			continue
		}
		start := w.r.now()
		cl, err := w.c.ClaimMessages(w.r.hard, w.q, cfg.ClaimLimit, cfg.ClaimTTL, cfg.ClaimGrace)
		if w.record(OpClaim, start, err) && err == nil {
			w.t.claimed += int64(len(cl.Messages))
			if len(cl.Messages) == 0 {
				w.t.emptyTakes++
			}
		}
		if err != nil || len(cl.Messages) == 0 {
			w.r.pause(cfg.EmptyWait)
			continue
		}
		for _, id := range cl.Messages {
			if w.r.stopped() {
				break // the claim expires and the message comes back
			}
			start := w.r.now()
			err := w.c.DeleteMessage(w.r.hard, w.q, id, cl.ID)
			if w.record(OpDelete, start, err) && err == nil {
				w.consumed(1)
			}
		}
	}
}

func (w *worker) pop() {
	start := w.r.now()
	n, err := w.c.PopMessages(w.r.hard, w.q, w.r.cfg.Pop)
	if w.record(OpPop, start, err) && err == nil {
		w.consumed(n)
		if n == 0 {
			w.t.emptyTakes++
		}
	}
	if err != nil || n == 0 {
		w.r.pause(w.r.cfg.EmptyWait)
	}
}

// observe lists the head of its queue until the run stops.
func (w *worker) observe() {
	for !w.r.stopped() {
		start := w.r.now()
		_, err := w.c.ListMessages(w.r.hard, w.q, w.r.cfg.ListLimit)
		w.record(OpList, start, err)
		if err != nil {
			w.r.pause(w.r.cfg.EmptyWait)
		}
	}
}

// messagesDoc returns a POST /messages document of n messages whose
// bodies are each size bytes of JSON. A ttl of 0 leaves it to the server.
func messagesDoc(n, size, ttl int) []byte {
	body := bodyOfSize(size)
	var b bytes.Buffer
	b.WriteString(`{"messages": [`)
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(`{`)
		if ttl > 0 {
			b.WriteString(`"ttl": ` + strconv.Itoa(ttl) + `, `)
		}
		b.WriteString(`"body": `)
		b.Write(body)
		b.WriteString(`}`)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

// bodyOfSize returns a JSON value of exactly size bytes: a string of
// letters, or the number 0 when size is 1.
func bodyOfSize(size int) []byte {
	if size < 2 {
		return []byte("0")
	}
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	rng := rand.New(rand.NewPCG(uint64(size), 1))
	b := make([]byte, size)
	b[0], b[size-1] = '"', '"'
	for i := 1; i < size-1; i++ {
		b[i] = letters[rng.IntN(len(letters))]
	}
	return b
}
