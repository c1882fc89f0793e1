package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cistern-mq/cistern/drivers"
	"github.com/cistern-mq/cistern/drivers/drivertest"
	"github.com/cistern-mq/cistern/index"
)

// ownedRef returns a queue of a shard n holds, with its epoch.
func ownedRef(t *testing.T, n *Node) (index.QueueRef, int64) {
	t.Helper()
	for _, ref := range refsByShard(t) {
		if e, ok := n.Fence("p1").Epoch(ref); ok {
			return ref, e
		}
	}
	t.Fatalf("node %s owns no shard", n.ID())
	return index.QueueRef{}, 0
}

func headOf(t *testing.T, f index.Fence, ref index.QueueRef) string {
	t.Helper()
	h, ok, err := f.Head(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		return "<none>"
	}
	return string(h)
}

func TestCommitAfterLeaseExpiryIsFenced(t *testing.T) {
	c := newTestCluster(t)
	a, b := c.join("a", nil), c.join("b", nil)
	drivertest.Eventually(t, "two nodes settle", func() bool { return c.settled(a, b) })
	fa, fb := a.Fence("p1"), b.Fence("p1")
	ref, epoch := ownedRef(t, a)
	ctx := context.Background()
	if err := fa.Commit(ctx, ref, epoch, []byte("h1")); err != nil {
		t.Fatal(err)
	}

	// a stops renewing, as if paused; wait in etcd for its lease to go.
	a.mu.RLock()
	lease := a.lease
	a.mu.RUnlock()
	a.Pause(true)
	drivertest.Eventually(t, "a's lease expires in etcd", func() bool {
		resp, err := c.cli.TimeToLive(ctx, lease)
		return err == nil && resp.TTL == -1 // -1: not found (0 is under a second left)
	})

	// The local check refuses at once; without it etcd refuses.
	if err := fa.Commit(ctx, ref, epoch, []byte("h2")); !errors.Is(err, index.ErrFenced) {
		t.Fatalf("commit after expiry: %v, want ErrFenced", err)
	}
	a.checkLocally = false
	if err := fa.Commit(ctx, ref, epoch, []byte("h2")); !errors.Is(err, index.ErrFenced) {
		t.Fatalf("commit after expiry, checked by etcd only: %v, want ErrFenced", err)
	}
	if got := headOf(t, fb, ref); got != "h1" {
		t.Fatalf("head %q after fenced commits, want h1", got)
	}
	if self, _ := a.Owner(ref.Project, ref.Name); self {
		t.Fatal("a still answers self for a queue whose lease expired")
	}

	var newEpoch int64
	drivertest.Eventually(t, "b takes the shard", func() bool {
		e, ok := fb.Epoch(ref)
		newEpoch = e
		return ok
	})
	if newEpoch == epoch {
		t.Fatalf("b's epoch %d is a's", newEpoch)
	}
	if err := fb.Commit(ctx, ref, newEpoch, []byte("h3")); err != nil {
		t.Fatal(err)
	}
	if err := fa.Commit(ctx, ref, epoch, []byte("h4")); !errors.Is(err, index.ErrFenced) {
		t.Fatalf("stale commit after takeover: %v, want ErrFenced", err)
	}
	if got := headOf(t, fa, ref); got != "h3" {
		t.Fatalf("head %q, want the new owner's h3", got)
	}

	// Resumed, a finds its lease gone, registers again and gets a share.
	a.Pause(false)
	drivertest.Eventually(t, "a rejoins", func() bool { return c.settled(a, b) })
	if lost := testutil.ToFloat64(a.m.changes.WithLabelValues(changeLost)); lost == 0 {
		t.Error("no lost shards counted")
	}
}

func TestGroupCommitBatches(t *testing.T) {
	c := newTestCluster(t)
	a := c.join("a", nil)
	drivertest.Eventually(t, "a owns everything", func() bool { return c.settled(a) })
	f := a.Fence("p1")
	refs := refsByShard(t)
	const commits = 200
	var wg sync.WaitGroup
	errs := make(chan error, commits)
	for i := range commits {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ref := index.QueueRef{Project: "p", Name: fmt.Sprintf("g%d", i)}
			if i%2 == 0 {
				ref = refs[i] // many shards, and many queues per shard
			}
			e, ok := f.Epoch(ref)
			if !ok {
				errs <- fmt.Errorf("%s not owned", ref)
				return
			}
			errs <- f.Commit(context.Background(), ref, e, fmt.Appendf(nil, "head-%d", i))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	txns := testutil.ToFloat64(a.m.commitTxns)
	ops := testutil.ToFloat64(a.m.commitOps)
	t.Logf("%d commits in %v txns", commits, txns)
	if ops != commits {
		t.Fatalf("%v ops counted, want %d", ops, commits)
	}
	if txns >= commits/4 {
		t.Fatalf("%v txns for %d concurrent commits: not batched", txns, commits)
	}
	if got := headOf(t, f, index.QueueRef{Project: "p", Name: "g1"}); got != "head-1" {
		t.Fatalf("head %q", got)
	}
	// Deleting a head.
	ref := index.QueueRef{Project: "p", Name: "g1"}
	e, _ := f.Epoch(ref)
	if err := f.Commit(context.Background(), ref, e, nil); err != nil {
		t.Fatal(err)
	}
	if got := headOf(t, f, ref); got != "<none>" {
		t.Fatalf("head %q after delete", got)
	}
}

// A stale commit in a batch fails alone: the others of its txn go again.
func TestStaleCommitFailsAloneInBatch(t *testing.T) {
	c := newTestCluster(t)
	a := c.join("a", nil)
	drivertest.Eventually(t, "a owns everything", func() bool { return c.settled(a) })
	a.checkLocally = false
	f := a.Fence("p1")
	refs := refsByShard(t)
	var wg sync.WaitGroup
	errs := make([]error, 100)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e, _ := f.Epoch(refs[i])
			if i == 7 {
				e-- // an epoch this node never held
			}
			errs[i] = f.Commit(context.Background(), refs[i], e, []byte("x"))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if i == 7 {
			if !errors.Is(err, index.ErrFenced) {
				t.Errorf("stale commit: %v, want ErrFenced", err)
			}
		} else if err != nil {
			t.Errorf("commit %d: %v", i, err)
		}
	}
	if got := headOf(t, f, refs[7]); got != "<none>" {
		t.Fatalf("stale commit wrote %q", got)
	}
}

func TestEtcdRestart(t *testing.T) {
	c := newTestCluster(t)
	a := c.join("a", nil)
	drivertest.Eventually(t, "a owns everything", func() bool { return c.settled(a) })
	f := a.Fence("p1")
	ref, epoch := ownedRef(t, a)
	ctx := context.Background()
	if err := f.Commit(ctx, ref, epoch, []byte("before")); err != nil {
		t.Fatal(err)
	}
	c.etcd.Stop()
	err := f.Commit(ctx, ref, epoch, []byte("during"))
	if !errors.Is(err, drivers.ErrUnavailable) {
		t.Fatalf("commit with etcd down: %v, want ErrUnavailable", err)
	}
	// Long enough down for the lease to be unconfirmed: still unavailable,
	// not fenced (the node does not know it lost anything).
	drivertest.Eventually(t, "lease unconfirmed", func() bool { return !a.LeaseFresh() })
	if err := f.Commit(ctx, ref, epoch, []byte("during")); !errors.Is(err, drivers.ErrUnavailable) {
		t.Fatalf("commit with etcd down past the lease: %v, want ErrUnavailable", err)
	}
	c.etcd.Restart()
	drivertest.Eventually(t, "commits go through again", func() bool {
		e, ok := f.Epoch(ref)
		return ok && f.Commit(ctx, ref, e, []byte("after")) == nil
	})
	drivertest.Eventually(t, "a registered and owns everything", func() bool {
		resp, err := c.cli.Get(ctx, c.prefix+"members/a")
		return err == nil && len(resp.Kvs) == 1 && c.settled(a)
	})
	if got := headOf(t, f, ref); got != "after" {
		t.Fatalf("head %q", got)
	}
}

func TestRevokedLeaseRegistersAgain(t *testing.T) {
	c := newTestCluster(t)
	var mu sync.Mutex
	releases := 0
	a := c.join("a", func(o *Options) {
		o.Release = func(context.Context, func(index.QueueRef) bool) error {
			mu.Lock()
			releases++
			mu.Unlock()
			return nil
		}
	})
	drivertest.Eventually(t, "a owns everything", func() bool { return c.settled(a) })
	a.mu.RLock()
	old := a.lease
	a.mu.RUnlock()
	if _, err := c.cli.Revoke(context.Background(), old); err != nil {
		t.Fatal(err)
	}
	drivertest.Eventually(t, "a owns everything under a new lease", func() bool {
		a.mu.RLock()
		lease := a.lease
		a.mu.RUnlock()
		resp, err := c.cli.Get(context.Background(), c.prefix+"members/a")
		return lease != old && err == nil && len(resp.Kvs) == 1 && clientv3.LeaseID(resp.Kvs[0].Lease) == lease && c.settled(a)
	})
	mu.Lock()
	defer mu.Unlock()
	if releases == 0 {
		t.Fatal("lost shards were not released")
	}
}
