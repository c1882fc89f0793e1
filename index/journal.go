package index

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/cistern-mq/cistern/drivers"
)

// The journal is the node's one group commit for every queue it serves
// (single node mode; a cluster keeps per-queue logs, fence.go). A queue's
// flusher hands its batch to the journal instead of writing a log object
// of its own; the journal writes the batches of every queue that arrived
// while its previous object was being written as one object,
// journal/<seq> in the control container, and every request in it is
// answered once that object is in the store. On fs that is one fsync for
// a batch that holds posts to 300 queues; on Swift one PUT.
//
// A queue's journaled batches are its "unfolded" sections. The queue keeps
// the bodies of their live messages in memory (state.pinned), and a fold
// (fold.go) copies those bodies into a body object of the queue's own,
// writes a snapshot and records it: from then on the queue loads without
// the journal, and its sections are released. A journal object is deleted
// once every section in it is released, and journal-start records the
// oldest object recovery must still read. A cold queue therefore loads as
// before (catalog entry, snapshot), plus a ranged read per section it
// still has in the journal; a long-lived message never pins a journal
// object, because a fold moves its body.
//
// Recovery at Open reads journal-start and then journal objects directly
// (a listing may lag) until one is missing; objects are written one at a
// time and in order, so a missing one is the end. One listing then checks
// that no object lies past that end (one in between was lost: Open
// refuses) and deletes the objects below the start a trim left behind.
// Which sections each queue still has is kept in memory; a queue applies
// them when it loads.
//
// A journal write that fails for good fails every batch in it (their
// queues reload from the store, with the sections already durable), and
// the next write reuses its number, overwriting whatever landed: nothing
// in it was acknowledged.
type journal struct {
	e      *Engine
	writer string // this engine instance, in every object it writes

	mu      sync.Mutex
	next    journalSeq    // the number the next object is written as
	start   journalSeq    // journal-start as last written (or read)
	open    *journalRound // batches waiting for the next write
	writing bool          // a writer goroutine is running
	// fenced: another engine wrote a journal object this one meant to
	// write (two nodes on one store). It never writes again.
	fenced bool
	// returning counts the flushers of the last round written that have
	// not come back yet with their next batch (or said they have none);
	// back is closed when it reaches 0. The writer waits for them, a
	// little, before it cuts the next round: otherwise it would race
	// ahead of the flushers it just woke and write rounds of one queue.
	returning int
	back      chan struct{}
	// width is how many queues the last round written carried. From
	// busyWidth on, the writer also waits (up to busyGather) until the
	// next round is a quarter wider: enough is closed when it is.
	width  int
	enough chan struct{}
	// sections are the durable, unfolded batches of each queue, oldest
	// first; refs counts them per journal object.
	sections map[QueueRef][]sectionRef
	refs     map[journalSeq]int
}

// journalSeq numbers the journal's objects. Its own type: mixing it up
// with a queue's log sequence numbers would read the wrong object.
type journalSeq uint64

// sectionRef is where one durable batch of a queue is: a byte range of a
// journal object.
type sectionRef struct {
	gen   string
	batch uint64
	obj   journalSeq
	off   int
	size  int
}

// journalRound is one journal object being filled and then written.
type journalRound struct {
	entries []journalEntry
	done    chan struct{}
	err     error
}

func newJournal(e *Engine) *journal {
	return &journal{e: e, writer: newID(8), next: 1, start: 1, sections: map[QueueRef][]sectionRef{}, refs: map[journalSeq]int{}}
}

// gatherWait bounds how long the writer waits for the flushers of the
// round it just wrote before it writes the next.
const gatherWait = time.Millisecond

// When the last round carried busyWidth queues or more (many queues are
// busy: their clients' next requests are on their way), the writer waits
// up to busyGather after a write returned for the next round to be a
// quarter wider than the last (widerThan), instead of writing what the
// first few brought: rounds grow until the wait bounds them. One queue's
// workload never waits: its own batch groups its requests.
const (
	busyWidth  = 8
	busyGather = 2 * time.Millisecond
)

// widerThan is the width a busy round waits for after one of width w.
func widerThan(w int) int { return w + w/4 }

// commit writes one batch of q (its frame: a whole log object) into the
// next journal object and waits until that object is in the store.
// returning says the caller's previous batch was in the last round
// written (see journal.returning).
func (j *journal) commit(ref QueueRef, gen string, batch uint64, frame []byte, returning bool) error {
	j.mu.Lock()
	if j.fenced {
		if returning {
			j.returnedLocked()
		}
		j.mu.Unlock()
		return errJournalFenced
	}
	if j.open == nil {
		j.open = &journalRound{done: make(chan struct{})}
	}
	r := j.open
	r.entries = append(r.entries, journalEntry{ref: ref, gen: gen, batch: batch, frame: frame})
	if j.enough != nil && len(r.entries) >= widerThan(j.width) {
		close(j.enough)
		j.enough = nil
	}
	if returning {
		j.returnedLocked()
	}
	if !j.writing {
		j.writing = true
		j.e.wg.Go(j.writeLoop)
	}
	j.mu.Unlock()
	<-r.done // the queue's flusher waits, as for its own log write
	return r.err
}

// returned says a flusher of the last round written came back without a
// next batch (it folds, or has nothing more to write).
func (j *journal) returned() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.returnedLocked()
}

func (j *journal) returnedLocked() {
	if j.returning--; j.returning == 0 && j.back != nil {
		close(j.back)
		j.back = nil
	}
}

// writeLoop writes rounds one after another until none is waiting: while
// one object is being written, the next round fills up.
func (j *journal) writeLoop() {
	ctx := context.Background()
	e := j.e
	for {
		wrote := time.Now()
		j.mu.Lock()
		if back := j.back; back != nil {
			j.mu.Unlock()
			select {
			case <-back:
			case <-time.After(gatherWait):
			}
			j.mu.Lock()
		}
		if j.width >= busyWidth && (j.open == nil || len(j.open.entries) < widerThan(j.width)) {
			enough := make(chan struct{})
			j.enough = enough
			j.mu.Unlock()
			select {
			case <-enough:
			case <-time.After(busyGather - time.Since(wrote)):
			}
			j.mu.Lock()
			j.enough = nil
		}
		r := j.open
		j.open = nil
		if r == nil {
			j.writing = false
			j.mu.Unlock()
			return
		}
		seq := j.next
		j.mu.Unlock()

		data, offs := encodeJournal(j.writer, r.entries)
		err := j.put(ctx, seq, data)
		j.mu.Lock()
		if err == nil {
			j.next++
			for i, en := range r.entries {
				j.add(en.ref, sectionRef{gen: en.gen, batch: en.batch, obj: seq, off: offs[i], size: len(en.frame)})
			}
			// Each of them comes back with its next batch or says it
			// has none: returnedLocked.
			if j.returning == 0 {
				j.back = make(chan struct{})
			}
			j.returning += len(r.entries)
			j.width = len(r.entries)
		}
		j.mu.Unlock()
		if err != nil && !errors.Is(err, ErrFenced) {
			e.log.Error().Err(err).Uint64("journal", uint64(seq)).Int("batches", len(r.entries)).
				Msg("journal write failed for good: its queues reload from the store")
			err = fmt.Errorf("index: journal %d: %w", seq, err)
		}
		r.err = err
		close(r.done)
	}
}

// isFenced reports whether another engine took this journal over: a
// fenced engine writes nothing more (no fold, no trim), since what it
// holds may be older than what the other wrote.
func (j *journal) isFenced() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.fenced
}

// errJournalFenced is what every write answers once another engine took
// a journal number this one meant to write.
var errJournalFenced = fmt.Errorf("%w: another node writes this store's journal: run one node per store, or cluster mode", ErrFenced)

// put writes journal object seq, create-only where the store can refuse
// an overwrite, retrying while the store is unavailable. A refusal over
// an object of this writer is a failed write of its own that landed: the
// same bytes are success, others are overwritten (nothing in them was
// acknowledged). Over another writer's object, the journal is fenced.
func (j *journal) put(ctx context.Context, seq journalSeq, data []byte) error {
	e := j.e
	createOnly := e.createOnly
	var err error
	for attempt := 0; attempt <= e.opts.WriteRetries; attempt++ {
		err = e.store.Put(ctx, controlContainer, journalKey(seq), data, &drivers.PutOptions{CreateOnly: createOnly})
		if errors.Is(err, drivers.ErrPreconditionFailed) {
			have, gerr := e.store.Get(ctx, controlContainer, journalKey(seq), nil)
			if gerr == nil && bytes.Equal(have, data) {
				return nil
			}
			var writer string
			if gerr == nil {
				writer, _, gerr = decodeJournal(have)
			}
			switch {
			case gerr == nil && writer == j.writer:
				createOnly = false
				continue
			case gerr == nil:
				e.log.Error().Uint64("journal", uint64(seq)).
					Msg("journal object written by another node: this node stops writing; run one node per store, or cluster mode")
				j.mu.Lock()
				j.fenced = true
				j.mu.Unlock()
				return errJournalFenced
			}
			// Unreadable or torn on its way: try again.
			err = fmt.Errorf("%w: journal %d taken, and not read back: %w", drivers.ErrUnavailable, seq, gerr)
		}
		if err == nil || !errors.Is(err, drivers.ErrUnavailable) {
			return err
		}
		e.log.Warn().Err(err).Uint64("journal", uint64(seq)).Int("attempt", attempt+1).Msg("journal write failed")
	}
	return err
}

// add records a durable section. Callers hold mu.
func (j *journal) add(ref QueueRef, s sectionRef) {
	j.sections[ref] = append(j.sections[ref], s)
	j.refs[s.obj]++
}

// after returns ref's sections of generation gen past batch, oldest first.
func (j *journal) after(ref QueueRef, gen string, batch uint64) []sectionRef {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []sectionRef
	for _, s := range j.sections[ref] {
		if s.gen == gen && s.batch > batch {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b sectionRef) int { return cmp.Compare(a.batch, b.batch) })
	return out
}

// release forgets ref's sections up to batch (a recorded snapshot holds
// them now), and every section of another generation than gen (a queue
// deleted and made again).
func (j *journal) release(ref QueueRef, gen string, batch uint64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.filter(ref, func(s sectionRef) bool { return s.gen == gen && s.batch > batch })
}

// drop forgets every section of ref: the queue is gone.
func (j *journal) drop(ref QueueRef) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.filter(ref, func(sectionRef) bool { return false })
}

// filter keeps the sections of ref for which keep is true. Callers hold mu.
func (j *journal) filter(ref QueueRef, keep func(sectionRef) bool) {
	secs := j.sections[ref]
	kept := secs[:0]
	for _, s := range secs {
		if keep(s) {
			kept = append(kept, s)
			continue
		}
		if j.refs[s.obj]--; j.refs[s.obj] <= 0 {
			delete(j.refs, s.obj)
		}
	}
	if len(kept) == 0 {
		delete(j.sections, ref)
	} else {
		j.sections[ref] = kept
	}
}

// has reports whether ref has unfolded sections.
func (j *journal) has(ref QueueRef) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.sections[ref]) > 0
}

// pendingRefs lists the queues with unfolded sections.
func (j *journal) pendingRefs() []QueueRef {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := make([]QueueRef, 0, len(j.sections))
	for ref := range j.sections {
		out = append(out, ref)
	}
	return out
}

// JournalStats reports the journal's objects still kept in the store and
// the batches in them not folded into their queues yet (0, 0 without a
// journal).
func (e *Engine) JournalStats() (objects, batches int) {
	if e.journal == nil {
		return 0, 0
	}
	return e.journal.stats()
}

// stats reports the journal's objects still kept and the sections not
// folded yet.
func (j *journal) stats() (objects, sections int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, s := range j.sections {
		sections += len(s)
	}
	return int(j.next - j.start), sections
}

// journalStart is the JSON of journal-start.
type journalStart struct {
	Start uint64 `json:"start"`
}

// trim deletes the journal objects whose sections are all released: it
// records the new start first, so that a recovery never looks for an
// object that is gone.
func (j *journal) trim(ctx context.Context) error {
	j.mu.Lock()
	if j.fenced {
		j.mu.Unlock()
		return nil
	}
	start := j.next
	for obj := range j.refs {
		start = min(start, obj)
	}
	old := j.start
	j.mu.Unlock()
	if start <= old {
		return nil
	}
	data, err := json.Marshal(journalStart{Start: uint64(start)})
	if err != nil {
		return err
	}
	if err := j.e.store.Put(ctx, controlContainer, journalStartKey, data, nil); err != nil {
		return fmt.Errorf("index: record journal start: %w", err)
	}
	j.mu.Lock()
	j.start = start
	j.mu.Unlock()
	keys := make([]string, 0, start-old)
	for s := old; s < start; s++ {
		keys = append(keys, journalKey(s))
	}
	if err := drivers.DeleteMany(ctx, j.e.store, controlContainer, keys); err != nil && !errors.Is(err, drivers.ErrNotFound) {
		// The start is recorded: what is left is only space, taken back
		// by the next start of the engine (below the start, nobody reads).
		j.e.log.Warn().Err(err).Msg("deleting folded journal objects failed")
	}
	return nil
}

// recover reads the journal from its recorded start, by direct reads
// until one is missing, and remembers every section in it. It runs in
// Open, before any queue loads. An object that does not decode stops the
// engine from opening: guessing could lose what was acknowledged.
func (j *journal) recover(ctx context.Context) error {
	e := j.e
	start := journalSeq(1)
	data, err := e.store.Get(ctx, controlContainer, journalStartKey, nil)
	switch {
	case err == nil:
		var js journalStart
		if err := json.Unmarshal(data, &js); err != nil || js.Start == 0 {
			return fmt.Errorf("%w: %s: %w", drivers.ErrUnavailable, journalStartKey, errCorrupt)
		}
		start = journalSeq(js.Start)
	case !errors.Is(err, drivers.ErrNotFound):
		return fmt.Errorf("index: read journal start: %w", err)
	}
	seq := start
	for lateOnce := false; ; {
		for {
			data, err := e.store.Get(ctx, controlContainer, journalKey(seq), nil)
			if errors.Is(err, drivers.ErrNotFound) {
				break
			}
			if err != nil {
				return fmt.Errorf("index: read journal %d: %w", seq, err)
			}
			_, secs, err := decodeJournal(data)
			if err != nil {
				return fmt.Errorf("%w: index: journal %d: %w", drivers.ErrUnavailable, seq, err)
			}
			for _, s := range secs {
				j.add(s.ref, sectionRef{gen: s.gen, batch: s.batch, obj: seq, off: s.off, size: s.size})
			}
			seq++
		}
		later, err := j.sweep(ctx, start, seq)
		if err != nil {
			return err
		}
		if later == 0 {
			break
		}
		if lateOnce {
			// Objects are written one after another: one past the
			// first missing number means one in between was lost,
			// and with it batches that were acknowledged.
			return fmt.Errorf("%w: index: journal %d is missing while journal %d exists", drivers.ErrUnavailable, seq, later)
		}
		// Or it was a write of a dead engine landing late: read on.
		lateOnce = true
	}
	j.start, j.next = start, seq
	if seq > start {
		e.log.Info().Uint64("from", uint64(start)).Uint64("objects", uint64(seq-start)).Int("queues", len(j.sections)).
			Msg("journal read back")
	}
	return nil
}

// sweep lists the journal once: it deletes the objects below start that
// a trim failed to delete, and returns the first object at or past end
// (0: none), which direct reads cannot see. A listing that lags may miss
// one; it never shows an object past the end that was not written.
func (j *journal) sweep(ctx context.Context, start, end journalSeq) (journalSeq, error) {
	e := j.e
	var stale []string
	var later journalSeq
	marker := ""
	for later == 0 {
		p, err := e.store.List(ctx, controlContainer, &drivers.ListOptions{Prefix: journalPrefix, Marker: marker})
		if err != nil {
			return 0, fmt.Errorf("index: list journal: %w", err)
		}
		for _, o := range p.Objects {
			seq, ok := parseSeqKey(o.Key, journalPrefix)
			switch s := journalSeq(seq); {
			case !ok:
			case s < start:
				stale = append(stale, o.Key)
			case s >= end && later == 0:
				later = s
			}
		}
		if p.Next == "" {
			break
		}
		marker = p.Next
	}
	if err := drivers.DeleteMany(ctx, e.store, controlContainer, stale); err != nil {
		e.log.Warn().Err(err).Int("objects", len(stale)).Msg("deleting journal objects below the start failed; the next start tries again")
	}
	return later, nil
}

// replayReaders bounds the ranged reads a load has in flight for its
// sections: a busy queue can have hundreds, and a remote store answers
// each in milliseconds.
const replayReaders = 16

// readSections reads the frames of secs, several at a time, in order.
func (j *journal) readSections(ctx context.Context, ref QueueRef, secs []sectionRef) ([][]byte, error) {
	frames := make([][]byte, len(secs))
	errs := make([]error, len(secs))
	sem := make(chan struct{}, replayReaders)
	var wg sync.WaitGroup
	for k, s := range secs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			data, err := j.e.store.Get(ctx, controlContainer, journalKey(s.obj),
				&drivers.GetOptions{Range: &drivers.Range{Offset: int64(s.off), Length: int64(s.size)}})
			if err == nil && len(data) != s.size {
				err = fmt.Errorf("%w: read %d bytes of %d", drivers.ErrUnavailable, len(data), s.size)
			}
			if errors.Is(err, drivers.ErrNotFound) {
				// Never deleted while a section in it is unfolded.
				err = fmt.Errorf("%w: journal object missing", drivers.ErrUnavailable)
			}
			if err != nil {
				err = fmt.Errorf("index: journal %d, batch %d of %s: %w", s.obj, s.batch, ref, err)
			}
			frames[k], errs[k] = data, err
		})
	}
	wg.Wait()
	return frames, errors.Join(errs...)
}

// replay applies q's unfolded sections past its log last to st, reading
// each back with a ranged GET, and returns the last batch applied (last
// when none). Their posted bodies are pinned: they live only in the
// journal until the next fold.
func (j *journal) replay(ctx context.Context, q *queue, st *state, gen string, last uint64) (uint64, int, error) {
	// Sections of another generation are a deleted queue's. Those the
	// snapshot holds already stay until a fold releases them: a later
	// load may have to start from an older snapshot.
	j.release(q.ref, gen, 0)
	secs := j.after(q.ref, gen, last)
	frames, err := j.readSections(ctx, q.ref, secs)
	if err != nil {
		return 0, 0, err
	}
	for k, s := range secs {
		data := frames[k]
		recs, err := decodeLog(data)
		if err != nil {
			return 0, 0, fmt.Errorf("%w: index: journal %d, batch %d of %s: %w", drivers.ErrUnavailable, s.obj, s.batch, q.ref, err)
		}
		for i := range recs {
			r := &recs[i]
			posted := r.Kind == recPost && r.Post.Seq >= st.nextSeq
			st.apply(r, s.batch)
			if posted {
				if m := st.msgs.find(r.Post.Seq); m != nil {
					st.pin(m, slices.Clone(r.Post.Body))
				}
			}
		}
		last = s.batch
	}
	return last, len(secs), nil
}
