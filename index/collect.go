package index

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/cistern-mq/cistern/drivers"
)

// writeSnapshot puts the snapshot taken as of log seq (after that log is
// in the store), records it in the catalog entry, and only then collects
// older snapshots and dead logs. live counts the bodies per log object
// that the snapshot holds. It reports whether the snapshot is recorded.
func (q *queue) writeSnapshot(ctx context.Context, container string, seq uint64, data []byte, live map[uint64]int) bool {
	e := q.e
	if err := e.store.Put(ctx, container, snapKey(seq), data, nil); err != nil {
		e.log.Warn().Err(err).Str("queue", q.ref.String()).Uint64("snapshot", seq).Msg("snapshot write failed; will retry later")
		q.mu.Lock()
		q.logsSinceSnap = max(q.logsSinceSnap, e.opts.SnapshotLogs/2) // retry sooner than usual
		q.mu.Unlock()
		return false
	}
	q.mu.Lock()
	q.snaps = append(q.snaps, seq)
	recorded := q.recordSnapshotLocked(ctx, seq)
	q.mu.Unlock()
	if recorded {
		q.collect(ctx, container, live)
	}
	return recorded
}

// recordSnapshotLocked writes seq into the queue's catalog entry as its
// newest snapshot, so that the next load reads it without listing. Only a
// recorded snapshot lets garbage collection go ahead: the entry never
// names a snapshot older than the one collection keeps. Callers hold mu,
// which orders this write with SetMetadata's.
func (q *queue) recordSnapshotLocked(ctx context.Context, seq uint64) bool {
	if !q.serving() || !q.exists || q.frozen != nil {
		return false
	}
	if q.e.fence != nil {
		if err := q.commitHead(ctx, func(h head) head { return h.withSnap(seq) }); err != nil {
			q.e.log.Warn().Err(err).Str("queue", q.ref.String()).Uint64("snapshot", seq).Msg("committing the snapshot in the head failed")
			return false
		}
		return true
	}
	ent := q.entry
	ent.Snap = &seq
	ent.Folded = q.e.journal != nil
	data, err := json.Marshal(ent)
	if err == nil {
		err = q.e.store.Put(ctx, controlContainer, catalogKey(q.ref), data, nil)
	}
	if err != nil {
		q.e.log.Warn().Err(err).Str("queue", q.ref.String()).Uint64("snapshot", seq).Msg("recording snapshot in the catalog failed")
		return false
	}
	q.entry = ent
	return true
}

// collect deletes what the two newest snapshots make unnecessary: older
// snapshots, and log and body objects up to the older of the two that hold no
// message body live in the newest snapshot (live: the logs it counts
// bodies in; no later change can bring a body back to life). Logs after
// the older snapshot stay, so that a recovery that starts from that one (a listing or a catalog read that lags) still finds
// every log it needs. Snapshots go first: while a snapshot is there, every
// log after it is too, so a recovery that finds one can replay from it.
func (q *queue) collect(ctx context.Context, container string, live map[uint64]int) {
	e := q.e
	q.mu.Lock()
	if len(q.snaps) < 2 || !q.serving() {
		q.mu.Unlock()
		return
	}
	keep := q.snaps[len(q.snaps)-2]
	q.snaps = slices.Clone(q.snaps[len(q.snaps)-2:])
	q.mu.Unlock()

	// Listed rather than remembered: a queue loaded through its recorded
	// snapshot never saw the older ones.
	snaps, err := q.listBelow(ctx, container, snapPrefix, keep, func(uint64) bool { return true })
	if err == nil {
		err = drivers.DeleteMany(ctx, e.store, container, snaps)
	}
	var logs []string
	if err == nil {
		logs, err = q.listBelow(ctx, container, logPrefix, keep, func(s uint64) bool { return live[s] == 0 })
	}
	if err == nil {
		err = drivers.DeleteMany(ctx, e.store, container, logs)
	}
	var bodies []string
	if err == nil && e.journal != nil {
		// Body objects of folds (fold.go) go by the same rule as logs.
		bodies, err = q.listBelow(ctx, container, bodyPrefix, keep, func(s uint64) bool { return live[s] == 0 })
	}
	if err == nil {
		err = drivers.DeleteMany(ctx, e.store, container, bodies)
	}
	if err != nil {
		e.log.Warn().Err(err).Str("queue", q.ref.String()).Msg("garbage collection failed; the next snapshot tries again")
	}
}

// listBelow lists the keys under prefix whose sequence number is below
// limit and for which garbage (called under q.mu) is true.
func (q *queue) listBelow(ctx context.Context, container, prefix string, limit uint64, garbage func(seq uint64) bool) ([]string, error) {
	var out []string
	marker := ""
	for {
		p, err := q.e.store.List(ctx, container, &drivers.ListOptions{Prefix: prefix, Marker: marker})
		if err != nil {
			return nil, err
		}
		q.mu.Lock()
		for _, o := range p.Objects {
			s, ok := parseSeqKey(o.Key, prefix)
			if !ok || s >= limit {
				p.Next = ""
				break
			}
			if garbage(s) {
				out = append(out, o.Key)
			}
		}
		q.mu.Unlock()
		if p.Next == "" {
			return out, nil
		}
		marker = p.Next
	}
}
