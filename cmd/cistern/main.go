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
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"

	"github.com/cistern-mq/cistern/drivers"
	"github.com/cistern-mq/cistern/drivers/storemetrics"
	"github.com/cistern-mq/cistern/index"
	"github.com/cistern-mq/cistern/server"
)

func main() {
	cfg, err := parseConfig(os.Args[1:], os.Getenv)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cistern:", err)
		os.Exit(2)
	}
	d, err := newDaemon(context.Background(), cfg, newLogger(cfg))
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
	engine *index.Engine
	stores []drivers.Store
	done   chan struct{}
}

func newDaemon(ctx context.Context, cfg Config, log zerolog.Logger) (d *daemon, err error) {
	d = &daemon{cfg: cfg, log: log, done: make(chan struct{})}
	defer func() {
		if err != nil {
			d.closeStores()
		}
	}()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := storemetrics.NewMetrics(reg)
	for _, p := range cfg.Pools {
		s, warnings, err := openPool(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("pool %q (%s): %w", p.Name, p.Kind, err)
		}
		d.stores = append(d.stores, s)
		caps := s.Capabilities()
		log.Info().Str("pool", p.Name).Str("driver", caps.Driver).Str("create_only", caps.CreateOnly.String()).
			Bool("consistent_list", caps.ConsistentList).Bool("batch_delete", caps.BatchDelete).Msg("pool opened")
		for _, w := range warnings {
			log.Warn().Str("pool", p.Name).Msg(w)
		}
		if caps.CreateOnly != drivers.CreateOnlyAtomic {
			log.Warn().Str("pool", p.Name).Str("create_only", caps.CreateOnly.String()).
				Msg("this store does not refuse a second writer atomically: run exactly one Cistern node against it")
		}
	}
	if len(cfg.Pools) > 1 {
		log.Warn().Str("pool", cfg.Pools[0].Name).Msg("several pools configured: until the ring lands, every queue lives on the first")
	}
	d.engine, err = index.Open(ctx, index.Options{
		Store:            metrics.Wrap(cfg.Pools[0].Name, d.stores[0]),
		Logger:           log,
		BodyCacheBytes:   cfg.Engine.BodyCacheMB << 20,
		SnapshotLogs:     cfg.Engine.SnapshotLogs,
		SnapshotInterval: cfg.Engine.SnapshotInterval,
		IdleTimeout:      cfg.Engine.IdleTimeout,
	})
	if err != nil {
		return nil, err
	}
	srv, err := server.New(server.Options{
		Engine:       d.engine,
		Logger:       log,
		Limits:       cfg.Limits,
		SharedSecret: cfg.SignedURLSecret,
		Registry:     reg,
	})
	if err != nil {
		d.engine.Close()
		return nil, err
	}
	d.ln, err = net.Listen("tcp", cfg.Listen)
	if err != nil {
		d.engine.Close()
		return nil, err
	}
	d.http = &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	return d, nil
}

// addr is the address the daemon listens on.
func (d *daemon) addr() string { return d.ln.Addr().String() }

// main serves until exit.
func (d *daemon) main() error {
	d.log.Info().Str("listen", "http://"+d.addr()).Msg("cistern serving the Zaqar v2 API")
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
	if err := d.http.Shutdown(ctx); err != nil {
		d.log.Warn().Err(err).Msg("requests still running at shutdown")
	}
	if err := d.engine.Close(); err != nil {
		d.log.Warn().Err(err).Msg("engine close")
	}
	d.closeStores()
	d.log.Info().Msg("stopped")
	close(d.done)
}

func (d *daemon) closeStores() {
	for _, s := range d.stores {
		s.Close()
	}
}
