package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/cistern-mq/cistern/index"
	"github.com/cistern-mq/cistern/ring"
)

// Node is this process's membership in the cluster: its lease, its member
// key, the shards it owns and its view of everyone else's. It is safe for
// concurrent use.
type Node struct {
	opts Options
	log  zerolog.Logger
	cli  *clientv3.Client
	keys keys
	m    *metrics
	// commits batches the heads of every pool's Fence (fence.go).
	commits *committer

	// ctx ends at Close; runCtx ends earlier, when Leave stops the run loop
	// while the keepalives go on.
	ctx       context.Context
	cancel    context.CancelFunc
	runCancel context.CancelFunc
	runDone   chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once

	// leaseLost wakes the run loop when a keepalive finds the lease gone.
	leaseLost chan struct{}
	// paused stops keepalives and reconciling (Pause, for tests).
	paused atomic.Bool
	// checkLocally is true except in tests that need a stale commit to
	// reach etcd.
	checkLocally bool

	mu      sync.RWMutex
	members map[NodeID]member
	ring    *ring.Set
	ringRev int64         // ModRevision of the ring key (0: none)
	assign  []ring.PoolID // the ring's pool of every shard
	slots   []slot
	// releasing marks shards being handed off: still owned (their commits
	// go through while Release flushes) but no longer served (Owner).
	releasing map[Shard]bool
	lease     clientv3.LeaseID // 0 while the node has none
	// lastAck is when the newest answered keepalive (or the grant) was sent.
	lastAck time.Time
	// kaFailing: the last keepalive could not reach etcd.
	kaFailing bool
	leaving   bool
}

// Join connects to etcd, registers this node under a new lease, mirrors the
// members, ring and owner keys, and returns after one reconcile pass (the
// ring updated for this node, the free shards it is given acquired). The
// node then keeps reconciling until Leave or Close.
func Join(ctx context.Context, opts Options) (*Node, error) {
	opts.setDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   opts.Endpoints,
		DialTimeout: opts.DialTimeout,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: etcd: %w", err)
	}
	n := &Node{
		opts:         opts,
		log:          opts.Logger.With().Str("node", string(opts.NodeID)).Logger(),
		cli:          cli,
		keys:         keys{prefix: opts.Prefix},
		leaseLost:    make(chan struct{}, 1),
		checkLocally: true,
		members:      map[NodeID]member{},
		slots:        make([]slot, 1<<opts.PartPower),
		releasing:    map[Shard]bool{},
		runDone:      make(chan struct{}),
	}
	n.m = newMetrics(n)
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.commits = newCommitter(n)
	fail := func(err error) (*Node, error) {
		n.cancel()
		cli.Close()
		return nil, err
	}
	if opts.Registry != nil {
		if err := n.m.register(opts.Registry); err != nil {
			return fail(fmt.Errorf("cluster: metrics: %w", err))
		}
	}
	if err := n.register(ctx); err != nil {
		return fail(err)
	}
	rev, err := n.resync(ctx)
	if err != nil {
		return fail(err)
	}
	if n.ring != nil && n.ring.PartPower() != opts.PartPower {
		return fail(fmt.Errorf("cluster: the stored ring has part power %d, this node %d", n.ring.PartPower(), opts.PartPower))
	}
	n.reconcile(ctx)
	var runCtx context.Context
	runCtx, n.runCancel = context.WithCancel(n.ctx)
	n.wg.Add(3)
	go n.run(runCtx, rev)
	go n.keepAlive()
	go n.commits.run()
	return n, nil
}

// register grants a lease and puts the member key under it.
func (n *Node) register(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, n.opts.RequestTimeout)
	defer cancel()
	sent := time.Now()
	ttl := int64((n.opts.LeaseTTL + time.Second - 1) / time.Second)
	g, err := n.cli.Grant(ctx, ttl)
	n.m.observe("grant", sent)
	if err != nil {
		return fmt.Errorf("cluster: grant a lease: %w", err)
	}
	val, _ := json.Marshal(member{ID: n.opts.NodeID, Advertise: n.opts.Advertise})
	start := time.Now()
	_, err = n.cli.Put(ctx, n.keys.member(n.opts.NodeID), string(val), clientv3.WithLease(g.ID))
	n.m.observe("put", start)
	if err != nil {
		return fmt.Errorf("cluster: register member: %w", err)
	}
	n.mu.Lock()
	n.lease, n.lastAck, n.kaFailing = g.ID, sent, false
	n.mu.Unlock()
	n.log.Info().Int64("lease", int64(g.ID)).Msg("cluster: registered")
	return nil
}

// resync lists the watched keys and replaces the view; it returns the
// listing's revision, from which a watch goes on.
func (n *Node) resync(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, n.opts.RequestTimeout)
	defer cancel()
	start := time.Now()
	resp, err := n.cli.Get(ctx, n.keys.watchStart(), clientv3.WithRange(n.keys.watchEnd()))
	n.m.observe("list", start)
	if err != nil {
		return 0, fmt.Errorf("cluster: list: %w", err)
	}
	n.log.Debug().Int("keys", len(resp.Kvs)).Int64("rev", resp.Header.Revision).Msg("cluster: listed")
	var lost []Shard
	n.mu.Lock()
	n.reset(resp.Kvs, resp.Header.Revision, &lost)
	n.mu.Unlock()
	n.lose(ctx, lost)
	return resp.Header.Revision, nil
}

// run follows etcd (watch), renews a lost lease and reconciles after every
// change, and every TTL/5 in case a step failed.
func (n *Node) run(ctx context.Context, rev int64) {
	defer n.wg.Done()
	defer close(n.runDone)
	tick := time.NewTicker(n.opts.LeaseTTL / 5)
	defer tick.Stop()
	var wch clientv3.WatchChan
	stopWatch := func() {}
	watch := func(from int64) {
		stopWatch()
		wctx, cancel := context.WithCancel(ctx)
		stopWatch = cancel
		wch = n.cli.Watch(wctx, n.keys.watchStart(), clientv3.WithRange(n.keys.watchEnd()), clientv3.WithRev(from))
	}
	defer func() { stopWatch() }()
	watch(rev + 1)
	for {
		select {
		case <-ctx.Done():
			return
		case wr, ok := <-wch:
			if !ok || wr.Err() != nil || wr.Canceled {
				n.log.Debug().Bool("ok", ok).AnErr("err", wr.Err()).Msg("cluster: watch ended")
				// Compacted past us or closed: list again and watch on.
				stopWatch()
				wch = nil
				if r, err := n.resync(ctx); err == nil {
					watch(r + 1)
				}
				break
			}
			var lost []Shard
			n.mu.Lock()
			for _, ev := range wr.Events {
				n.applyEvent(ev, &lost)
			}
			n.mu.Unlock()
			n.lose(ctx, lost)
		case <-n.leaseLost:
			n.renewLease(ctx)
		case <-tick.C:
			if wch == nil {
				if r, err := n.resync(ctx); err == nil {
					watch(r + 1)
				}
			}
		}
		if !n.paused.Load() {
			n.reconcile(ctx)
		}
	}
}

// keepAlive renews the lease every TTL/5 and records when each answered
// renewal was sent: the node's claim to its shards is only as fresh as that.
func (n *Node) keepAlive() {
	defer n.wg.Done()
	every := n.opts.LeaseTTL / 5
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-tick.C:
		}
		n.mu.RLock()
		id := n.lease
		n.mu.RUnlock()
		if id == 0 || n.paused.Load() {
			continue
		}
		ctx, cancel := context.WithTimeout(n.ctx, n.opts.RequestTimeout)
		sent := time.Now()
		resp, err := n.cli.KeepAliveOnce(ctx, id)
		cancel()
		n.m.observe("keepalive", sent)
		switch {
		case err == nil && resp.TTL > 0:
			n.mu.Lock()
			if n.lease == id && sent.After(n.lastAck) {
				n.lastAck, n.kaFailing = sent, false
			}
			n.mu.Unlock()
		case err == nil || errors.Is(err, rpctypes.ErrLeaseNotFound):
			n.log.Warn().Int64("lease", int64(id)).Msg("cluster: lease expired")
			select {
			case n.leaseLost <- struct{}{}:
			default:
			}
		case n.ctx.Err() == nil:
			n.mu.Lock()
			n.kaFailing = true
			n.mu.Unlock()
			n.log.Debug().Err(err).Msg("cluster: keepalive failed")
		}
	}
}

// renewLease drops every shard held under the lost lease, releases them and
// registers again under a new lease, retrying until etcd answers.
func (n *Node) renewLease(ctx context.Context) {
	n.mu.Lock()
	lost := n.ownedLocked()
	n.lease = 0
	n.mu.Unlock()
	n.lose(ctx, lost)
	for ctx.Err() == nil {
		err := n.register(ctx)
		if err == nil {
			return
		}
		n.log.Warn().Err(err).Msg("cluster: register again")
		select {
		case <-ctx.Done():
		case <-time.After(n.opts.LeaseTTL / 5):
		}
	}
}

// lose records shards this node lost without handing them off and has the
// engines unload their queues (whose commits already fail).
func (n *Node) lose(ctx context.Context, lost []Shard) {
	if len(lost) == 0 {
		return
	}
	n.m.changes.WithLabelValues(changeLost).Add(float64(len(lost)))
	n.log.Warn().Int("shards", len(lost)).Msg("cluster: lost shards")
	n.release(ctx, lost)
}

// release calls Options.Release for the queues of shards.
func (n *Node) release(ctx context.Context, shards []Shard) {
	if n.opts.Release == nil || len(shards) == 0 {
		return
	}
	set := make(map[Shard]bool, len(shards))
	for _, s := range shards {
		set[s] = true
	}
	match := func(ref index.QueueRef) bool { return set[n.shardOf(ref.Project, ref.Name)] }
	if err := n.opts.Release(ctx, match); err != nil {
		n.log.Warn().Err(err).Int("shards", len(shards)).Msg("cluster: release")
	}
}

func (n *Node) shardOf(project, queue string) Shard {
	return Shard(ring.Partition(n.opts.PartPower, project, queue))
}

// Leave hands this node's shards over and stops it (SIGTERM): it stops
// acquiring, deletes its member key so that the others rebalance the ring
// without it, releases each owned shard (Options.Release, then the owner
// key's delete), revokes its lease and closes. The node is closed even when
// Leave fails; what it could not hand over expires with the lease.
func (n *Node) Leave(ctx context.Context) error {
	defer n.Close()
	n.mu.Lock()
	n.leaving = true
	lease := n.lease
	n.mu.Unlock()
	n.runCancel()
	<-n.runDone
	rctx, cancel := context.WithTimeout(ctx, n.opts.RequestTimeout)
	_, err := n.cli.Delete(rctx, n.keys.member(n.opts.NodeID))
	cancel()
	if err != nil {
		return fmt.Errorf("cluster: leave: %w", err)
	}
	n.mu.RLock()
	owned := n.ownedLocked()
	n.mu.RUnlock()
	if err := n.handOff(ctx, owned); err != nil {
		return err
	}
	if lease != 0 {
		rctx, cancel := context.WithTimeout(ctx, n.opts.RequestTimeout)
		_, err := n.cli.Revoke(rctx, lease)
		cancel()
		if err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
			return fmt.Errorf("cluster: leave: revoke: %w", err)
		}
	}
	n.log.Info().Int("shards", len(owned)).Msg("cluster: left")
	return nil
}

// Close stops the node without handing anything over: its keys stay until
// its lease expires (as if the process were killed).
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.cancel()
		n.wg.Wait()
		n.mu.Lock()
		n.lease = 0
		n.mu.Unlock()
		n.cli.Close()
	})
	return nil
}

// Pause stops (true) or resumes (false) the node's lease renewals and its
// reconciling (no acquire, no handoff, no lease renewal), as SIGSTOP would,
// while Owner, Epoch and Commit still answer: a test plays the paused
// process's requests through them. For tests.
func (n *Node) Pause(pause bool) { n.paused.Store(pause) }

// ID returns this node's id.
func (n *Node) ID() NodeID { return n.opts.NodeID }

// LeaseFresh reports whether the lease was confirmed recently enough that
// it cannot have expired: a keepalive answered that was sent less than
// TTL - TTL/5 ago.
func (n *Node) LeaseFresh() bool {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.fresh()
}

func (n *Node) fresh() bool {
	ttl := n.opts.LeaseTTL
	return n.lease != 0 && time.Now().Before(n.lastAck.Add(ttl-ttl/5))
}
