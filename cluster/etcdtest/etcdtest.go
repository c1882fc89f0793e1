// Package etcdtest runs a real etcd inside a Go test: one member of the
// embedded server, on loopback ports chosen at start, with its data in the
// test's temporary directory. It is the one place in Cistern that knows the
// embed API, so that tests of every package (cluster, server, cmd) start
// etcd the same way.
//
// Restart stops the member and starts it again on the same ports with the
// same data, which is what a test of an etcd outage needs: clients keep
// their endpoints and find the same keys (and leases, whose TTL the new
// leader pushes forward) once it is back.
package etcdtest

import (
	"fmt"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// startTimeout bounds how long a member may take to become ready: a loaded
// two-core machine under -race takes seconds, not minutes.
const startTimeout = 60 * time.Second

// Etcd is a running (or stopped) embedded etcd member.
type Etcd struct {
	t         testing.TB
	dir       string
	clientURL url.URL
	peerURL   url.URL
	mu        sync.Mutex
	etcd      *embed.Etcd // nil while stopped
}

// Start runs a member for the rest of the test (t.Cleanup stops it) and
// returns it; Endpoints gives the URLs a client dials.
func Start(t testing.TB) *Etcd {
	t.Helper()
	e := &Etcd{
		t:         t,
		dir:       t.TempDir(),
		clientURL: url.URL{Scheme: "http", Host: freeAddr(t)},
		peerURL:   url.URL{Scheme: "http", Host: freeAddr(t)},
	}
	if err := e.start(); err != nil {
		t.Fatalf("etcdtest: start: %v", err)
	}
	t.Cleanup(e.Stop)
	return e
}

// Endpoints returns the client URLs, the same across Restart.
func (e *Etcd) Endpoints() []string { return []string{e.clientURL.String()} }

// Stop stops the member at once, the way a crash would (no lease expires
// after Stop begins), and waits until its ports are free; its data stays
// for Restart.
// Stopping a stopped member does nothing.
func (e *Etcd) Stop() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.etcd == nil {
		return
	}
	// Stop raft first, as a crash would: a graceful Close keeps the member
	// running (expiring leases) for seconds while it waits on watch streams.
	e.etcd.Server.HardStop()
	e.etcd.Close()
	<-e.etcd.Server.StopNotify()
	e.etcd = nil
}

// Restart stops the member if it runs and starts it again on the same ports
// and data, failing the test if it does not come back.
func (e *Etcd) Restart() {
	e.t.Helper()
	e.Stop()
	if err := e.start(); err != nil {
		e.t.Fatalf("etcdtest: restart: %v", err)
	}
}

// Running reports whether the member is started.
func (e *Etcd) Running() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.etcd != nil
}

func (e *Etcd) start() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.etcd != nil {
		return nil
	}
	cfg := embed.NewConfig()
	cfg.Name = "etcdtest"
	cfg.Dir = e.dir
	// etcd logs an error for every listener it closes on Stop; a test's
	// output is no place for them.
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.ListenClientUrls = []url.URL{e.clientURL}
	cfg.AdvertiseClientUrls = []url.URL{e.clientURL}
	cfg.ListenPeerUrls = []url.URL{e.peerURL}
	cfg.AdvertisePeerUrls = []url.URL{e.peerURL}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	srv, err := embed.StartEtcd(cfg)
	if err != nil {
		return err
	}
	select {
	case <-srv.Server.ReadyNotify():
	case err := <-srv.Err():
		srv.Close()
		return err
	case <-time.After(startTimeout):
		srv.Close()
		return fmt.Errorf("not ready after %v", startTimeout)
	}
	e.etcd = srv
	return nil
}

// freeAddr returns a loopback address with a port free at the time of the
// call: the member must bind the same port again on Restart, so it cannot
// hand its own listener over.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("etcdtest: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}
