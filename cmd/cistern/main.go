// Command cistern serves the OpenStack Zaqar v2 HTTP API over an object
// store. `go run ./cmd/cistern` serves 127.0.0.1:8888 from ./cistern-data;
// `cistern -h` lists every option.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"

	"github.com/cistern-mq/cistern/cluster"
	"github.com/cistern-mq/cistern/drivers"
	"github.com/cistern-mq/cistern/drivers/faultstore"
	"github.com/cistern-mq/cistern/drivers/storemetrics"
	"github.com/cistern-mq/cistern/drivers/throttle"
	"github.com/cistern-mq/cistern/index"
	"github.com/cistern-mq/cistern/notify"
	"github.com/cistern-mq/cistern/placement"
	"github.com/cistern-mq/cistern/server"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "migrate" {
		os.Exit(migrateCommand(os.Args[2:], os.Getenv, os.Stderr))
	}
	if checkConfigWanted(os.Args[1:]) {
		os.Exit(checkConfig(context.Background(), os.Args[1:], os.Getenv, os.Stdout))
	}
	cfg, err := parseConfig(os.Args[1:], os.Getenv)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if errors.Is(err, errVersion) {
		fmt.Println("cistern", buildVersion())
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cistern:", err)
		os.Exit(2)
	}
	log := newLogger(cfg, os.Stderr)
	log.Info().Str("version", buildVersion()).Msg("cistern starting")
	for _, msg := range cfg.warnings {
		log.Warn().Msg(msg)
	}
	d, err := startDaemon(context.Background(), cfg, log, time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cistern:", err)
		os.Exit(1)
	}
	// Room for signals that arrive together (a SIGHUP, then a SIGTERM):
	// with a buffer of one the second was dropped.
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		stopping := false
		for s := range sig {
			switch {
			case s == syscall.SIGHUP:
				// Its default action would kill the server (a closed
				// terminal, a reload by habit): nothing is reloaded.
				d.log.Warn().Str("signal", s.String()).Msg("SIGHUP ignored: nothing is reloaded; restart to apply configuration changes")
			case stopping:
				d.log.Info().Str("signal", s.String()).Msg("already shutting down")
			default:
				stopping = true
				d.log.Info().Str("signal", s.String()).Msg("shutting down")
				go d.exit()
			}
		}
	}()
	if err := d.main(); err != nil {
		d.log.Error().Err(err).Msg("serve failed")
		os.Exit(1)
	}
}

// newLogger writes to w; colours only when w is a terminal, so that
// journald, files and pipes get no escape codes.
func newLogger(cfg Config, w *os.File) zerolog.Logger {
	level, err := zerolog.ParseLevel(cfg.LogLevel)
	if err != nil || cfg.LogLevel == "" {
		level = zerolog.InfoLevel
	}
	var l zerolog.Logger
	if cfg.LogJSON {
		l = zerolog.New(w)
	} else {
		l = zerolog.New(zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339, NoColor: !terminal(w)})
	}
	return l.Level(level).With().Timestamp().Logger()
}

// terminal reports whether f is a character device (a terminal).
func terminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// startDaemon builds the daemon, trying again every retryEvery while a
// store answers "unavailable" (it is still starting, or its host is not up
// yet), for at most cfg.StartTimeout. A store that refuses the credentials,
// or any other error, ends start-up at once: waiting cannot fix a wrong key
// or a bad configuration.
func startDaemon(ctx context.Context, cfg Config, log zerolog.Logger, retryEvery time.Duration) (*daemon, error) {
	deadline := time.Now().Add(cfg.StartTimeout)
	for {
		d, err := newDaemon(ctx, cfg, log)
		if err == nil {
			return d, nil
		}
		if errors.Is(err, drivers.ErrAuth) {
			return nil, fmt.Errorf("%w (not retried: fix the pool's credentials)", err)
		}
		if !errors.Is(err, drivers.ErrUnavailable) {
			return nil, err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil, fmt.Errorf("gave up after start_timeout %s: %w", cfg.StartTimeout, err)
		}
		ev := log.Warn().Err(err).Dur("time_left", left.Round(time.Second))
		var pe *placement.PoolError
		if errors.As(err, &pe) {
			ev.Str("pool", pe.Pool).Msgf("waiting for pool %s", pe.Pool)
		} else {
			ev.Msg("waiting for the control pool's store")
		}
		t := time.NewTimer(min(retryEvery, left))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// daemon is one cistern process: New binds the listener (so 127.0.0.1:0
// works in tests), main serves until exit is called, exit shuts down in
// order: stop taking requests, let in-flight ones (and their group commits)
// finish, close the engine, close the stores.
type daemon struct {
	cfg    Config
	log    zerolog.Logger
	ln     net.Listener
	http   *http.Server
	adminL net.Listener
	admin  *http.Server
	// metricsL serves /metrics alone (metrics_listen set to an address).
	metricsL net.Listener
	metrics  *http.Server
	// wsL serves Zaqar's websocket transport (websocket_listen).
	wsL    net.Listener
	wsHS   *http.Server
	router *placement.Router
	srv    *server.Server
	// node is this node's membership of a cluster (nil: a single node);
	// released is the router its Release callback reaches, set once the
	// router is open (the node joins before it).
	node     *cluster.Node
	released atomic.Pointer[placement.Router]
	// deliverer sends the queues' messages to their webhook subscribers.
	deliverer *notify.Deliverer
	done      chan struct{}
}

func newDaemon(ctx context.Context, cfg Config, log zerolog.Logger) (_ *daemon, err error) {
	d := &daemon{cfg: cfg, log: log, done: make(chan struct{})}
	defer func() {
		if err != nil {
			d.close() // what was opened before the failure
		}
	}()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := storemetrics.NewMetrics(reg)
	// stores are the opened stores by pool name: the first pool's holds
	// the subscriptions, in its control container as placement's records.
	var storesMu sync.Mutex
	stores := map[string]drivers.Store{}
	var specs []placement.PoolSpec
	for _, p := range cfg.Pools {
		s, err := spec(p)
		if err != nil {
			return nil, err
		}
		specs = append(specs, s)
	}
	if cfg.Cluster != nil {
		// The public listener is bound before joining: once this node
		// joins, the others forward to it, and a bound listener holds
		// their connections until it serves, where an unbound port would
		// refuse them. (A single node binds it last, so that clients are
		// refused at once while it waits for its stores.)
		if err := d.listen(); err != nil {
			return nil, err
		}
		if d.node, err = d.join(ctx, reg); err != nil {
			return nil, err
		}
	}
	d.router, err = placement.Open(ctx, placement.Options{
		Pools: specs,
		Open: func(ctx context.Context, s placement.PoolSpec) (drivers.Store, error) {
			st, err := openSpec(ctx, s, cfg.Cluster != nil)
			if err != nil {
				return nil, err
			}
			logCapabilities(log, s.Name, st, cfg.Cluster != nil)
			// CISTERN_FAULTS is for tests only: the crash test injects
			// store faults into the real binary (docs/testing.md).
			if spec := os.Getenv("CISTERN_FAULTS"); spec != "" {
				fst, err := faultstore.FromSpec(st, spec)
				if err != nil {
					return nil, err
				}
				log.Warn().Str("pool", s.Name).Str("faults", spec).Msg("CISTERN_FAULTS is set: injecting store faults (tests only)")
				st = fst
			}
			// Counted (placement's requests too), and at most
			// max_store_requests in flight: requests beyond wait here.
			limit := cfg.Engine.MaxStoreRequests
			if limit == 0 && !strings.HasPrefix(s.URI, "file:") {
				limit = 32 // remote stores; a local folder needs no bound
			}
			out := throttle.New(metrics.Wrap(s.Name, st), limit)
			storesMu.Lock()
			stores[s.Name] = out
			storesMu.Unlock()
			return out, nil
		},
		NewEngine: func(ctx context.Context, pool string, st drivers.Store) (*index.Engine, error) {
			var fence index.Fence
			if d.node != nil {
				fence = d.node.Fence(pool)
			}
			return index.Open(ctx, index.Options{
				Fence:            fence,
				Store:            st,
				Logger:           log.With().Str("pool", pool).Logger(),
				BodyCacheBytes:   cfg.Engine.BodyCacheMB << 20,
				SnapshotLogs:     cfg.Engine.SnapshotLogs,
				SnapshotInterval: cfg.Engine.SnapshotInterval,
				IdleTimeout:      cfg.Engine.IdleTimeout,
				NoJournal:        cfg.Engine.Journal != nil && !*cfg.Engine.Journal,
				FoldBytes:        cfg.Engine.FoldMB << 20,
			})
		},
		Seed:      cfg.Ring.Seed,
		PartPower: cfg.Ring.PartPower,
		Logger:    log,
		URIAllow:  uriAllow(cfg, specs),
		Cluster:   d.node != nil,
	})
	if err != nil {
		return nil, err
	}
	d.released.Store(d.router)
	var deadLetters *cluster.DeadLetters
	if d.node != nil {
		id, err := d.node.ClusterID(ctx)
		if err != nil {
			return nil, err
		}
		if err := d.router.BindCluster(ctx, id); err != nil {
			return nil, err
		}
	} else if id, ok := d.router.BoundCluster(ctx); ok {
		log.Warn().Str("cluster", id).Msg("this store was served by a cluster: its queues answer 503 to a single node (their state is in the cluster's etcd); start the nodes with -etcd")
	}
	if d.node != nil {
		secret, err := d.node.Secret(ctx)
		if err != nil {
			return nil, err
		}
		deadLetters = cluster.NewDeadLetters(d.node, d.router, secret)
		d.router.SetDeadLetters(deadLetters)
	}
	reg.MustRegister(newDepthCollector(d.router))
	var ks *server.Keystone
	if cfg.AuthStrategy == "keystone" {
		ko := cfg.Keystone.Options()
		ko.Logger = log
		if ks, err = server.NewKeystone(ko); err != nil {
			return nil, err
		}
	}
	storesMu.Lock()
	control := stores[specs[0].Name]
	storesMu.Unlock()
	if control == nil {
		return nil, fmt.Errorf("pool %s: its store was not opened", specs[0].Name)
	}
	subs, err := notify.NewStore(ctx, control, nil)
	if err != nil {
		return nil, err
	}
	d.deliverer, err = notify.NewDeliverer(notify.DeliverOptions{Store: subs, Source: d.router, Logger: log,
		Allow: cfg.subscriberAllow, RequireConfirmation: cfg.RequireConfirmation, Mail: cfg.SMTP.Options()})
	if err != nil {
		return nil, err
	}
	so := server.Options{
		Subscriptions:       subs,
		Notify:              d.deliverer,
		RequireConfirmation: cfg.RequireConfirmation,
		Mailto:              cfg.SMTP.Address != "",
		Engine:              d.router,
		Pools:               d.router,
		Logger:              log,
		Limits:              cfg.Limits,
		SharedSecret:        cfg.SignedURLSecret,
		Registry:            reg,
		Keystone:            ks,
		PublicMetrics:       cfg.MetricsListen == metricsPublic,
		RequestTimeout:      cfg.RequestTimeout,
	}
	if d.node != nil {
		so.Cluster, so.NodeID = d.node, cfg.Cluster.NodeID
	}
	srv, err := server.New(so)
	if err != nil {
		return nil, err
	}
	d.srv = srv
	public := srv.Handler()
	if deadLetters != nil {
		mux := http.NewServeMux()
		mux.Handle(cluster.DeadLetterPath, deadLetters.Handler())
		mux.Handle("/", public)
		public = mux
	}
	if d.ln == nil {
		if err := d.listen(); err != nil {
			return nil, err
		}
	}
	d.http = d.httpServer(public)
	if cfg.AdminListen != "" {
		al, err := net.Listen("tcp", cfg.AdminListen)
		if err != nil {
			return nil, err
		}
		d.adminL = limitListen(al, cfg.HTTP.AdminMaxConnections)
		mux := http.NewServeMux()
		if cfg.AdminPprof {
			mux.HandleFunc("/debug/pprof/", pprof.Index)
			mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
			mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
			mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		}
		mux.Handle("/", srv.AdminHandler())
		d.admin = d.httpServer(mux)
	}
	if cfg.MetricsListen != "" && cfg.MetricsListen != metricsPublic {
		ml, err := net.Listen("tcp", cfg.MetricsListen)
		if err != nil {
			return nil, err
		}
		d.metricsL = limitListen(ml, cfg.HTTP.AdminMaxConnections)
		d.metrics = d.httpServer(srv.MetricsHandler())
	}
	if cfg.WebsocketListen != "" {
		wl, err := net.Listen("tcp", cfg.WebsocketListen)
		if err != nil {
			return nil, err
		}
		d.wsL = limitListen(wl, cfg.HTTP.MaxConnections)
		d.wsHS = d.httpServer(srv.WebsocketHandler())
	}
	return d, nil
}

// httpServer bounds a listener's connections in time: headers, the whole
// request with its body (a client trickling a body cannot hold a
// connection, a descriptor and a goroutine for ever), and idleness.
func (d *daemon) httpServer(h http.Handler) *http.Server {
	c := d.cfg.HTTP
	return &http.Server{Handler: h, ReadHeaderTimeout: c.ReadHeaderTimeout, ReadTimeout: c.ReadTimeout,
		IdleTimeout: c.IdleTimeout, ErrorLog: stdlog.New(d.log.With().Str("component", "http").Logger(), "", 0)}
}

// logCapabilities says at start-up what guarantees a pool's store gives.
func logCapabilities(log zerolog.Logger, pool string, st drivers.Store, clustered bool) {
	caps := st.Capabilities()
	log.Info().Str("pool", pool).Str("driver", caps.Driver).Str("create_only", caps.CreateOnly.String()).
		Bool("consistent_list", caps.ConsistentList).Bool("batch_delete", caps.BatchDelete).Msg("pool opened")
	if w, ok := st.(interface{ Warnings() []string }); ok {
		for _, msg := range w.Warnings() {
			log.Warn().Str("pool", pool).Msg(msg)
		}
	}
	if caps.CreateOnly != drivers.CreateOnlyAtomic && !clustered {
		log.Warn().Str("pool", pool).Str("create_only", caps.CreateOnly.String()).
			Msg("this store does not refuse a second writer atomically: run exactly one Cistern node against it")
	}
}

// join makes this process a node of the cluster cfg.Cluster names,
// waiting up to start_timeout for etcd as it does for the stores.
func (d *daemon) join(ctx context.Context, reg *prometheus.Registry) (*cluster.Node, error) {
	c := d.cfg.Cluster
	deadline := time.Now().Add(d.cfg.StartTimeout)
	for {
		node, err := cluster.Join(ctx, cluster.Options{
			Endpoints: c.Endpoints,
			NodeID:    cluster.NodeID(c.NodeID),
			Advertise: c.Advertise,
			LeaseTTL:  c.LeaseTTL,
			Logger:    d.log,
			Registry:  reg,
			Release: func(ctx context.Context, match func(index.QueueRef) bool) error {
				if r := d.released.Load(); r != nil {
					return r.Release(ctx, match)
				}
				return nil
			},
		})
		if err == nil {
			d.log.Info().Str("node", c.NodeID).Str("advertise", c.Advertise).Strs("etcd", c.Endpoints).
				Int("shards", node.OwnedShards()).Msg("joined the cluster")
			return node, nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil, fmt.Errorf("cluster: gave up after start_timeout %s: %w", d.cfg.StartTimeout, err)
		}
		d.log.Warn().Err(err).Dur("time_left", left.Round(time.Second)).Msg("waiting for etcd")
		t := time.NewTimer(min(time.Second, left))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// addr is the address the daemon listens on.
func (d *daemon) addr() string { return d.ln.Addr().String() }

// main serves until exit.
func (d *daemon) main() error {
	d.log.Info().Str("listen", "http://"+d.addr()).Msg("cistern serving the Zaqar v2 API")
	d.warnExposure()
	if d.admin != nil {
		d.log.Info().Str("listen", "http://"+d.adminL.Addr().String()).Bool("pprof", d.cfg.AdminPprof).Msg("admin API (pools, flavors, migrations)")
		go func() {
			if err := d.admin.Serve(d.adminL); err != nil && !errors.Is(err, http.ErrServerClosed) {
				d.log.Error().Err(err).Msg("admin listener failed")
			}
		}()
	}
	if d.metrics != nil {
		d.log.Info().Str("listen", "http://"+d.metricsL.Addr().String()+"/metrics").Msg("metrics")
		go func() {
			if err := d.metrics.Serve(d.metricsL); err != nil && !errors.Is(err, http.ErrServerClosed) {
				d.log.Error().Err(err).Msg("metrics listener failed")
			}
		}()
	}
	if d.wsHS != nil {
		d.log.Info().Str("listen", "ws://"+d.wsL.Addr().String()).Msg("Zaqar websocket transport")
		go func() {
			if err := d.wsHS.Serve(d.wsL); err != nil && !errors.Is(err, http.ErrServerClosed) {
				d.log.Error().Err(err).Msg("websocket listener failed")
			}
		}()
	}
	err := d.http.Serve(d.ln)
	<-d.done
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// warnExposure says at start-up who can do what: there is no
// authentication yet, so a listener reachable from other hosts lets anyone
// act as any project, and the admin listener lets anyone manage pools.
func (d *daemon) warnExposure() {
	if d.cfg.secretInArgs {
		d.log.Warn().Msg("the signed-URL secret was given with -signed-url-secret, which every user of this host sees in ps: " +
			"use CISTERN_SIGNED_URL_SECRET or -signed-url-secret-file")
	}
	if d.cfg.AuthStrategy == "" || d.cfg.AuthStrategy == "noauth" {
		if !loopback(d.ln.Addr()) {
			d.log.Warn().Str("listen", d.addr()).Msg("serving WITHOUT AUTHENTICATION on a non-loopback address: " +
				"anyone who reaches it can read, write and delete every project's queues (X-Project-ID is trusted); " +
				"put an authenticating proxy in front or listen on 127.0.0.1")
		}
		if d.wsL != nil && !loopback(d.wsL.Addr()) {
			d.log.Warn().Str("websocket_listen", d.wsL.Addr().String()).Msg("serving the websocket transport WITHOUT AUTHENTICATION on a non-loopback address: " +
				"anyone who reaches it can read, write and delete every project's queues; listen on 127.0.0.1 or use auth_strategy keystone")
		}
	}
	if d.admin == nil {
		return
	}
	ev := d.log.Info()
	if !loopback(d.adminL.Addr()) {
		ev = d.log.Warn()
	}
	ev.Str("listen", d.adminL.Addr().String()).Strs("pool_uri_allow", d.router.URIAllow()).
		Msg("the admin listener has NO AUTHENTICATION: whoever reaches it can add pools (within pool_uri_allow) and move queues; keep it on loopback or a private network")
}

// loopback reports whether a listener's address is reachable only from
// this host. The unspecified address (0.0.0.0, ::) is not.
func loopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// listen binds the public listener.
func (d *daemon) listen() error {
	ln, err := net.Listen("tcp", d.cfg.Listen)
	if err != nil {
		return err
	}
	d.ln = limitListen(ln, d.cfg.HTTP.MaxConnections)
	return nil
}

// clusterDrain is how long a cluster node keeps serving after its hand-off
// before it stops listening.
const clusterDrain = time.Second

// exit shuts the daemon down in order and unblocks main. A cluster node
// first hands its queues over, while it still serves: requests for what it
// gave away are forwarded to their new owners meanwhile.
func (d *daemon) exit() {
	ctx, cancel := context.WithTimeout(context.Background(), d.cfg.ShutdownTimeout)
	defer cancel()
	if d.node != nil {
		if err := d.node.Leave(ctx); err != nil {
			d.log.Warn().Err(err).Msg("cluster: hand-off not finished; what is left moves when the lease expires")
		}
		// The other nodes learn the new owners from etcd within
		// milliseconds and stop forwarding here; a short drain lets the
		// forwards already on their way in arrive before the listener
		// closes its kept-alive connections under them.
		t := time.NewTimer(min(clusterDrain, d.cfg.ShutdownTimeout/4))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	if d.admin != nil {
		if err := d.admin.Shutdown(ctx); err != nil {
			d.log.Warn().Err(err).Msg("admin requests still running at shutdown")
		}
	}
	if d.metrics != nil {
		_ = d.metrics.Shutdown(ctx)
	}
	if d.wsHS != nil {
		_ = d.wsHS.Shutdown(ctx)
		d.srv.CloseWebsockets() // hijacked: Shutdown leaves them open
	}
	if err := d.http.Shutdown(ctx); err != nil {
		d.log.Warn().Err(err).Msg("requests still running at shutdown")
	}
	d.close()
	d.log.Info().Msg("stopped")
	close(d.done)
}

// close stops the engines (each flushes its group commits) and the stores.
func (d *daemon) close() {
	if d.deliverer != nil {
		d.deliverer.Close() // before the router it reads from
	}
	if d.router != nil {
		d.router.Close()
	}
	if d.srv != nil {
		d.srv.Close()
	}
	if d.node != nil {
		d.node.Close()
	}
	for _, l := range []net.Listener{d.ln, d.adminL, d.metricsL, d.wsL} {
		if l != nil {
			l.Close()
		}
	}
}
