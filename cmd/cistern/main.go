// Command cistern serves the OpenStack Zaqar v2 HTTP API over an object
// store. `go run ./cmd/cistern` serves 127.0.0.1:8888 from ./cistern-data;
// `cistern -h` lists every option.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"

	"github.com/cistern-mq/cistern/drivers"
	"github.com/cistern-mq/cistern/drivers/faultstore"
	"github.com/cistern-mq/cistern/drivers/storemetrics"
	"github.com/cistern-mq/cistern/drivers/throttle"
	"github.com/cistern-mq/cistern/index"
	"github.com/cistern-mq/cistern/placement"
	"github.com/cistern-mq/cistern/server"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "migrate" {
		os.Exit(migrateCommand(os.Args[2:], os.Getenv, os.Stderr))
	}
	cfg, err := parseConfig(os.Args[1:], os.Getenv)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cistern:", err)
		os.Exit(2)
	}
	log := newLogger(cfg)
	// A store that is still starting (or briefly overloaded) answers
	// "unavailable": keep trying for a while before giving up.
	var d *daemon
	for start := time.Now(); ; {
		d, err = newDaemon(context.Background(), cfg, log)
		if err == nil || !errors.Is(err, drivers.ErrUnavailable) || time.Since(start) > cfg.StartTimeout {
			break
		}
		log.Warn().Err(err).Msg("a store is unavailable; trying again")
		time.Sleep(time.Second)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cistern:", err)
		os.Exit(1)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sig
		d.log.Info().Str("signal", s.String()).Msg("shutting down")
		d.exit()
	}()
	if err := d.main(); err != nil {
		d.log.Error().Err(err).Msg("serve failed")
		os.Exit(1)
	}
}

func newLogger(cfg Config) zerolog.Logger {
	level, err := zerolog.ParseLevel(cfg.LogLevel)
	if err != nil || cfg.LogLevel == "" {
		level = zerolog.InfoLevel
	}
	var l zerolog.Logger
	if cfg.LogJSON {
		l = zerolog.New(os.Stderr)
	} else {
		l = zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: time.RFC3339})
	}
	return l.Level(level).With().Timestamp().Logger()
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
	router *placement.Router
	done   chan struct{}
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
	var specs []placement.PoolSpec
	for _, p := range cfg.Pools {
		s, err := spec(p)
		if err != nil {
			return nil, err
		}
		specs = append(specs, s)
	}
	d.router, err = placement.Open(ctx, placement.Options{
		Pools: specs,
		Open: func(ctx context.Context, s placement.PoolSpec) (drivers.Store, error) {
			st, err := openSpec(ctx, s)
			if err != nil {
				return nil, err
			}
			logCapabilities(log, s.Name, st)
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
			return throttle.New(metrics.Wrap(s.Name, st), limit), nil
		},
		NewEngine: func(ctx context.Context, pool string, st drivers.Store) (*index.Engine, error) {
			return index.Open(ctx, index.Options{
				Store:            st,
				Logger:           log.With().Str("pool", pool).Logger(),
				BodyCacheBytes:   cfg.Engine.BodyCacheMB << 20,
				SnapshotLogs:     cfg.Engine.SnapshotLogs,
				SnapshotInterval: cfg.Engine.SnapshotInterval,
				IdleTimeout:      cfg.Engine.IdleTimeout,
			})
		},
		Seed:      cfg.Ring.Seed,
		PartPower: cfg.Ring.PartPower,
		Logger:    log,
	})
	if err != nil {
		return nil, err
	}
	reg.MustRegister(newDepthCollector(d.router))
	srv, err := server.New(server.Options{
		Engine:       d.router,
		Pools:        d.router,
		Logger:       log,
		Limits:       cfg.Limits,
		SharedSecret: cfg.SignedURLSecret,
		Registry:     reg,
	})
	if err != nil {
		return nil, err
	}
	if d.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
		return nil, err
	}
	d.http = &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	if cfg.AdminListen != "" {
		if d.adminL, err = net.Listen("tcp", cfg.AdminListen); err != nil {
			return nil, err
		}
		// The admin listener also serves Go's profiler, for operators.
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.Handle("/", srv.AdminHandler())
		d.admin = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	}
	return d, nil
}

// logCapabilities says at start-up what guarantees a pool's store gives.
func logCapabilities(log zerolog.Logger, pool string, st drivers.Store) {
	caps := st.Capabilities()
	log.Info().Str("pool", pool).Str("driver", caps.Driver).Str("create_only", caps.CreateOnly.String()).
		Bool("consistent_list", caps.ConsistentList).Bool("batch_delete", caps.BatchDelete).Msg("pool opened")
	if w, ok := st.(interface{ Warnings() []string }); ok {
		for _, msg := range w.Warnings() {
			log.Warn().Str("pool", pool).Msg(msg)
		}
	}
	if caps.CreateOnly != drivers.CreateOnlyAtomic {
		log.Warn().Str("pool", pool).Str("create_only", caps.CreateOnly.String()).
			Msg("this store does not refuse a second writer atomically: run exactly one Cistern node against it")
	}
}

// addr is the address the daemon listens on.
func (d *daemon) addr() string { return d.ln.Addr().String() }

// main serves until exit.
func (d *daemon) main() error {
	d.log.Info().Str("listen", "http://"+d.addr()).Msg("cistern serving the Zaqar v2 API")
	if d.admin != nil {
		d.log.Info().Str("listen", "http://"+d.adminL.Addr().String()).Msg("admin API (pools, flavors, migrations)")
		go func() {
			if err := d.admin.Serve(d.adminL); err != nil && !errors.Is(err, http.ErrServerClosed) {
				d.log.Error().Err(err).Msg("admin listener failed")
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

// exit shuts the daemon down in order and unblocks main.
func (d *daemon) exit() {
	ctx, cancel := context.WithTimeout(context.Background(), d.cfg.ShutdownTimeout)
	defer cancel()
	if d.admin != nil {
		if err := d.admin.Shutdown(ctx); err != nil {
			d.log.Warn().Err(err).Msg("admin requests still running at shutdown")
		}
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
	if d.router != nil {
		d.router.Close()
	}
	for _, l := range []net.Listener{d.ln, d.adminL} {
		if l != nil {
			l.Close()
		}
	}
}
