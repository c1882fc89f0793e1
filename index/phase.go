package index

// phase is where a queue in the engine's map is in its life:
//
//	loading ──▶ serving ──▶ stale
//	   │           └──────▶ moved
//	   └──▶ loadFailed
//
// The request that finds a queue missing from the map loads it (loading);
// requests that find it loading wait on ready. A queue leaves serving for
// good: stale when its index may differ from the store (a failed or
// fenced write) or it was deleted, so the next request loads it anew;
// moved when a migration handed it to another pool. A queue in any phase
// but serving is dropped from the map by the next request that sees it.
// The phase is written under the queue's mu.
type phase uint8

const (
	phaseLoading    phase = iota // its first request reads it from the store
	phaseLoadFailed              // that read failed: the next request tries again
	phaseServing                 // loaded: requests use it
	phaseStale                   // failed, fenced or deleted: reload from the store
	phaseMoved                   // migrated away: requests answer ErrMoved
)

func (p phase) String() string {
	switch p {
	case phaseLoading:
		return "loading"
	case phaseLoadFailed:
		return "load failed"
	case phaseServing:
		return "serving"
	case phaseStale:
		return "stale"
	case phaseMoved:
		return "moved"
	}
	return "unknown"
}

// serving reports whether requests may use q. Callers hold q.mu.
func (q *queue) serving() bool { return q.phase == phaseServing }

// currentPhase reads q's phase under its lock.
func (q *queue) currentPhase() phase {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.phase
}

// leave ends q's service: to phaseStale or phaseMoved. Callers hold q.mu.
func (q *queue) leave(to phase) { q.phase = to }
