package placement

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/cistern-mq/cistern/drivers"
	"github.com/cistern-mq/cistern/index"
)

// Migration moves a queue to another pool while it stays readable and
// writable:
//
//  1. write migrating/<queue> {from, to} in the control container, so a
//     crash at any later step is resumed at the next start;
//  2. copy every object of the queue (its log and snapshot objects) to the
//     target, while the queue keeps serving from its pool (objects are
//     immutable: copying is idempotent);
//  3. freeze the queue: new requests wait, the group commits already under
//     way finish;
//  4. copy the log objects written since step 2;
//  5. adopt the queue in the target (its catalog entry, same generation and
//     metadata);
//  6. flip the placement to the target: from here on the queue lives there;
//  7. hand over: the source forgets the queue (requests that waited are sent
//     to the target) and removes its objects; delete the migrating marker.
//
// The queue is unavailable only between 3 and 7, for as long as copying the
// last few log objects takes. Message ids, claims, claim counts and order are
// those of the log, so nothing changes for clients.

// MigrationStatus is the progress of a migration job.
type MigrationStatus struct {
	Running bool     `json:"running"`
	Total   int      `json:"total"`
	Done    int      `json:"done"`
	Failed  int      `json:"failed"`
	Current string   `json:"current,omitempty"`
	Errors  []string `json:"errors,omitempty"`
}

type migrator struct {
	r      *Router
	mu     sync.Mutex
	status MigrationStatus
	ctx    context.Context
	cancel context.CancelFunc
	// hook, in tests, runs after each step and may fail it ("copied",
	// "adopted", "flipped").
	hook func(step string, ref index.QueueRef) error
}

func newMigrator(r *Router) *migrator {
	m := &migrator{r: r}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	return m
}

func (m *migrator) stop() { m.cancel() }

func (m *migrator) step(name string, ref index.QueueRef) error {
	if m.hook != nil {
		return m.hook(name, ref)
	}
	return nil
}

func migratingKey(ref index.QueueRef) string { return migratingPrefix + index.RefKey(ref) }

// MigrateQueue moves one queue to pool to ("" = where the ring puts it now)
// and returns when it is done.
func (r *Router) MigrateQueue(ctx context.Context, ref index.QueueRef, to string) error {
	if err := r.clusterRefusal("live migration"); err != nil {
		return err
	}
	from, settled, err := r.lookup(ctx, ref)
	if err != nil {
		return err
	}
	if !settled {
		// No record: it lives on the control pool, if anywhere.
		if _, exists, err := r.Queue(ctx, ref); err != nil || !exists {
			return cmp.Or(err, fmt.Errorf("%w: %s", index.ErrQueueNotFound, ref))
		}
	}
	if to == "" {
		info, _, err := r.Queue(ctx, ref)
		if err != nil {
			return err
		}
		if to, err = r.ringPool(ref, flavorOf(info.Metadata)); err != nil {
			return err
		}
	}
	if from == to {
		return nil
	}
	if _, err := r.engine(to); err != nil {
		return fmt.Errorf("%w: %q", ErrPoolNotFound, to)
	}
	if err := putJSON(ctx, r.control, migratingKey(ref), migratingEntry{From: from, To: to}); err != nil {
		return err
	}
	return r.move(ctx, ref, from, to)
}

// move runs steps 2 to 7 of a migration whose marker is written.
func (r *Router) move(ctx context.Context, ref index.QueueRef, from, to string) error {
	src, err := r.pool(from)
	if err != nil {
		return err
	}
	dst, err := r.pool(to)
	if err != nil {
		return err
	}
	loc, exists, err := src.engine.Locate(ctx, ref)
	if err != nil {
		return err
	}
	if !exists { // deleted meanwhile
		return r.control.Delete(ctx, controlContainer, migratingKey(ref))
	}
	// A queue that lived on the target before comes back into the
	// container it left there: what is left of that is removed first.
	if err := dst.engine.FinishRemoval(ctx, loc.Container); err != nil {
		return err
	}
	copied, err := index.CopyQueue(ctx, src.store, dst.store, loc.Container)
	if err != nil {
		return err
	}
	if err := r.mig.step("copied", ref); err != nil {
		return err
	}
	fr, err := src.engine.Freeze(ctx, ref)
	if errors.Is(err, index.ErrQueueNotFound) {
		return r.control.Delete(ctx, controlContainer, migratingKey(ref))
	}
	if err != nil {
		return err
	}
	committed := false
	defer func() {
		if !committed {
			fr.Abort()
		}
	}()
	// The logs written since the copy.
	if err := index.CopyLogs(ctx, src.store, dst.store, loc.Container, copied+1, fr.Loc.LastLog); err != nil {
		return err
	}
	if err := dst.engine.Adopt(ctx, ref, fr.Loc.Entry); err != nil {
		return err
	}
	if err := r.mig.step("adopted", ref); err != nil {
		return err
	}
	if err := r.putRecord(ctx, ref, to, false); err != nil {
		return err
	}
	r.cache.Add(ref, to)
	if err := r.mig.step("flipped", ref); err != nil {
		// From the flip on the queue lives in the target; the source
		// must not serve it again, even if the hand-over fails.
		committed = true
		return err
	}
	committed = true
	if err := fr.Commit(ctx); err != nil {
		return err
	}
	r.log.Info().Str("queue", ref.String()).Str("from", from).Str("to", to).Msg("queue migrated")
	return r.control.Delete(ctx, controlContainer, migratingKey(ref))
}

func (r *Router) pool(name string) (*pool, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	p, ok := r.pools[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrPoolNotFound, name)
	}
	return p, nil
}

// resume finishes the migrations that a crash interrupted.
func (m *migrator) resume(ctx context.Context) {
	r := m.r
	pending, err := listMigrating(ctx, r)
	if err != nil {
		r.log.Warn().Err(err).Msg("cannot list interrupted migrations; they resume at the next start")
		return
	}
	for ref, ent := range pending {
		if err := r.finish(ctx, ref, ent); err != nil {
			r.log.Warn().Err(err).Str("queue", ref.String()).Msg("interrupted migration not finished; retried at the next start")
		}
	}
}

// finish completes one interrupted migration.
func (r *Router) finish(ctx context.Context, ref index.QueueRef, ent migratingEntry) error {
	cur, err := r.readRecord(ctx, ref)
	if err != nil {
		return err
	}
	if cur != ent.To {
		// Not flipped: start over from the copy.
		r.log.Info().Str("queue", ref.String()).Str("to", ent.To).Msg("resuming migration")
		return r.move(ctx, ref, ent.From, ent.To)
	}
	// Flipped: only the hand-over in the source is left.
	src, err := r.pool(ent.From)
	if err != nil {
		return err
	}
	fr, err := src.engine.Freeze(ctx, ref)
	if err == nil {
		err = fr.Commit(ctx)
	} else if errors.Is(err, index.ErrQueueNotFound) {
		err = nil
	}
	if err != nil {
		return err
	}
	return r.control.Delete(ctx, controlContainer, migratingKey(ref))
}

func listMigrating(ctx context.Context, r *Router) (map[index.QueueRef]migratingEntry, error) {
	out := map[index.QueueRef]migratingEntry{}
	marker := ""
	for {
		p, err := r.control.List(ctx, controlContainer, &drivers.ListOptions{Prefix: migratingPrefix, Marker: marker})
		if err != nil {
			return nil, err
		}
		for _, o := range p.Objects {
			ref, ok := index.ParseRefKey(o.Key[len(migratingPrefix):])
			if !ok {
				continue
			}
			ent, err := getRecord(ctx, r.control, o.Key, decodeMigrating)
			if errors.Is(err, drivers.ErrNotFound) {
				continue // finished since the listing
			}
			if err != nil {
				r.log.Warn().Err(err).Str("key", o.Key).Msg("unreadable migration marker left alone")
				continue
			}
			out[ref] = ent
		}
		if p.Next == "" {
			return out, nil
		}
		marker = p.Next
	}
}

// Migrate starts a job that moves one queue (ref not nil) or every queue the
// ring now places elsewhere, and returns its status at once. One job runs
// at a time.
func (r *Router) Migrate(ref *index.QueueRef, to string) (MigrationStatus, error) {
	if err := r.clusterRefusal("live migration"); err != nil {
		return MigrationStatus{}, err
	}
	m := r.mig
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.status.Running {
		return m.status, errors.New("a migration is already running")
	}
	m.status = MigrationStatus{Running: true}
	r.wg.Go(func() { m.run(ref, to) })
	return m.status, nil
}

// MigrationStatus returns the progress of the last migration job.
func (r *Router) MigrationStatus() MigrationStatus {
	r.mig.mu.Lock()
	defer r.mig.mu.Unlock()
	s := r.mig.status
	s.Errors = append([]string(nil), s.Errors...)
	return s
}

func (m *migrator) run(ref *index.QueueRef, to string) {
	r, ctx := m.r, m.ctx
	var todo []index.QueueRef
	if ref != nil {
		todo = []index.QueueRef{*ref}
	} else {
		var err error
		if todo, err = r.misplaced(ctx); err != nil {
			m.mu.Lock()
			m.status.Running = false
			m.status.Errors = append(m.status.Errors, err.Error())
			m.mu.Unlock()
			return
		}
	}
	m.mu.Lock()
	m.status.Total = len(todo)
	m.mu.Unlock()
	for _, q := range todo {
		if ctx.Err() != nil {
			break
		}
		m.mu.Lock()
		m.status.Current = q.String()
		m.mu.Unlock()
		err := r.MigrateQueue(ctx, q, to)
		m.mu.Lock()
		if err != nil {
			m.status.Failed++
			if len(m.status.Errors) < 20 {
				m.status.Errors = append(m.status.Errors, fmt.Sprintf("%s: %v", q, err))
			}
		} else {
			m.status.Done++
		}
		m.mu.Unlock()
	}
	m.mu.Lock()
	m.status.Running = false
	m.status.Current = ""
	m.mu.Unlock()
}

// misplaced lists every queue whose pool is not the one the ring picks for
// it now.
func (r *Router) misplaced(ctx context.Context) ([]index.QueueRef, error) {
	moves, err := r.scanMisplaced(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]index.QueueRef, len(moves))
	for i, m := range moves {
		out[i] = index.QueueRef{Project: m.Project, Name: m.Queue}
	}
	return out, nil
}

// Move is one queue a migration of every misplaced queue would move.
type Move struct {
	Project string `json:"project"`
	Queue   string `json:"queue"`
	From    string `json:"from"`
	To      string `json:"to"`
}

// Plan lists what a migration of every misplaced queue would move now, and
// where to, without changing anything (`cistern migrate -dry-run`).
func (r *Router) Plan(ctx context.Context) ([]Move, error) {
	return r.scanMisplaced(ctx)
}

// scanMisplaced walks every pool's queues. A queue found on a pool that is
// not where it lives (a copy left by a migration) is skipped.
func (r *Router) scanMisplaced(ctx context.Context) ([]Move, error) {
	var out []Move
	r.mu.RLock()
	names := make([]string, 0, len(r.pools))
	for n := range r.pools {
		names = append(names, n)
	}
	r.mu.RUnlock()
	slices.Sort(names)
	for _, name := range names {
		p, err := r.pool(name)
		if err != nil {
			continue
		}
		marker := ""
		for {
			refs, next, err := p.engine.AllQueues(ctx, marker, 1000)
			if err != nil {
				return nil, err
			}
			for _, ref := range refs {
				cur, _, err := r.lookup(ctx, ref)
				if err != nil {
					return nil, err
				}
				if cur != name {
					continue // a copy left by a migration, not the queue
				}
				info, _, err := p.engine.Queue(ctx, ref)
				if err != nil {
					return nil, err
				}
				want, err := r.ringPool(ref, flavorOf(info.Metadata))
				if errors.Is(err, ErrNoPool) {
					continue // its group has no pool now: it has nowhere to go
				}
				if err != nil {
					return nil, err
				}
				if want != cur {
					out = append(out, Move{Project: ref.Project, Queue: ref.Name, From: cur, To: want})
				}
			}
			if next == "" {
				break
			}
			marker = next
		}
	}
	return out, nil
}
