// Command cistern-bench loads any OpenStack Zaqar v2 endpoint (Cistern,
// the Python Zaqar, ...) with producers, consumers and observers for a
// fixed time or a fixed number of messages, and reports throughput,
// latency percentiles, errors and, when the server exports
// cistern_store_requests_total, object-store requests per message.
// `cistern-bench -h` explains every flag; package bench does the work.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/cistern-mq/cistern/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// options are the flags that are not part of bench.Config.
type options struct {
	json    bool
	verbose bool
}

// messagesCap is the default upper bound of a -messages run whose
// -duration is not given.
const messagesCap = 5 * time.Minute

const usage = `Usage: cistern-bench [flags]

Load generator for any OpenStack Zaqar v2 endpoint. Producers POST batches of
messages, consumers claim them and DELETE each with its claim id (or, with
-pop, DELETE ?pop=N), observers GET the head of the queue. Each role's workers
are spread over the queues round robin; every worker has its own Client-ID and
keep-alive connection. The queues (<prefix>0, <prefix>1, ...) are created with
PUT and deleted at the end unless -keep.

A run is: setup, -warmup (load, not measured), the measured window (-duration,
or until -messages have been posted and consumed, -duration then being the
upper bound, default 5m), a drain, teardown. Only requests that start and end
inside the window count. The whole run ends by warmup + duration + grace even
if the server hangs; requests cut off then are reported as aborted.

Examples:
  cistern-bench                                    1 producer, 1 consumer, 10 s, 127.0.0.1:8888
  cistern-bench -producers 8 -consumers 8 -queues 4 -batch 10 -size 512 -warmup 5s -duration 30s
  cistern-bench -producers 4 -consumers 0 -messages 100000 -prefix fill- -keep
  cistern-bench -producers 0 -consumers 8 -pop 10 -prefix fill- -queues 1 -messages 100000
  cistern-bench -json | jq .ops.claim.latency_ms.p99

Output: a table (or with -json one JSON document): messages posted and
consumed (deleted with their claim id, or popped) and per second; for each
operation (post, claim, delete, pop, list) requests, requests/s, latency
p50/p90/p99/max in ms of the successful requests, and errors by HTTP status
(or timeout, decode, net); and, when the metrics URL serves the Prometheus
counter cistern_store_requests_total, the object-store requests the server
made in the window, per posted and per consumed message, and by verb.

Flags:
`

// parseFlags turns the command line into a bench.Config.
func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (bench.Config, options, error) {
	cfg := bench.DefaultConfig()
	var opt options
	fs := flag.NewFlagSet("cistern-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
		fmt.Fprint(fs.Output(), "\nEnvironment:\n  CISTERN_BENCH_TOKEN  default of -token (keeps the token off the command line)\n")
	}
	fs.StringVar(&cfg.URL, "url", cfg.URL, "Zaqar endpoint `root`")
	fs.StringVar(&cfg.Project, "project", cfg.Project, "X-Project-ID")
	fs.StringVar(&cfg.Token, "token", getenv("CISTERN_BENCH_TOKEN"), "X-Auth-Token to send (none when empty)")
	fs.IntVar(&cfg.Queues, "queues", cfg.Queues, "number of queues")
	prefix := fs.String("prefix", "", "queue name prefix (default bench-<random>-)")
	fs.BoolVar(&cfg.Keep, "keep", false, "do not delete the queues at the end")
	fs.IntVar(&cfg.Producers, "producers", cfg.Producers, "producer workers")
	fs.IntVar(&cfg.Consumers, "consumers", cfg.Consumers, "consumer workers")
	fs.IntVar(&cfg.Observers, "observers", cfg.Observers, "observer workers")
	fs.IntVar(&cfg.Batch, "batch", cfg.Batch, "messages per POST")
	fs.IntVar(&cfg.Size, "size", cfg.Size, "`bytes` of each message body (a JSON string)")
	fs.IntVar(&cfg.TTL, "ttl", cfg.TTL, "`seconds` a message lives (0: server default)")
	fs.IntVar(&cfg.ClaimLimit, "claim-limit", cfg.ClaimLimit, "messages per claim")
	fs.IntVar(&cfg.ClaimTTL, "claim-ttl", cfg.ClaimTTL, "`seconds` a claim lasts (0: server default)")
	fs.IntVar(&cfg.ClaimGrace, "claim-grace", cfg.ClaimGrace, "`seconds` of claim grace (0: server default)")
	fs.IntVar(&cfg.Pop, "pop", cfg.Pop, "consumers DELETE ?pop=`N` instead of claim and delete (0: claim)")
	fs.IntVar(&cfg.ListLimit, "list-limit", cfg.ListLimit, "messages per observer GET")
	fs.DurationVar(&cfg.EmptyWait, "empty-wait", cfg.EmptyWait, "pause after an empty claim or pop, or an error")
	fs.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "load before the window, not measured")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "measured window (with -messages: its upper bound, default 5m)")
	fs.Int64Var(&cfg.Messages, "messages", cfg.Messages, "stop after `N` messages posted and consumed (0: run for -duration)")
	fs.DurationVar(&cfg.Grace, "grace", cfg.Grace, "time on top of warmup + duration for setup, drain and teardown")
	metrics := fs.String("metrics", "", "Prometheus `URL` to scrape for store requests (default: <url>/metrics; \"off\" to skip); cistern serves /metrics on its admin listener or metrics_listen, on the public one only with metrics_listen public")
	fs.BoolVar(&opt.json, "json", false, "print one JSON document instead of the table")
	fs.BoolVar(&opt.verbose, "v", false, "print each phase to stderr as it starts")
	if err := fs.Parse(args); err != nil {
		return cfg, opt, err
	}
	if fs.NArg() > 0 {
		return cfg, opt, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if *prefix != "" {
		cfg.Prefix = *prefix
	}
	set := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if cfg.Messages > 0 && !set["duration"] {
		cfg.Duration = messagesCap
	}
	switch *metrics {
	case "off":
		cfg.MetricsURL = ""
	case "":
		cfg.MetricsURL = strings.TrimRight(cfg.URL, "/") + "/metrics"
	default:
		cfg.MetricsURL = *metrics
	}
	return cfg, opt, cfg.Validate()
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cfg, opt, err := parseFlags(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "cistern-bench:", err)
		return 2
	}
	if opt.verbose {
		cfg.Progress = func(p bench.Phase) {
			fmt.Fprintf(stderr, "cistern-bench: %s %s\n", time.Now().Format("15:04:05.000"), p)
		}
	}
	rep, err := bench.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "cistern-bench:", err)
		return 1
	}
	if opt.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(rep)
	} else {
		err = rep.WriteTable(stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "cistern-bench:", err)
		return 1
	}
	return 0
}
