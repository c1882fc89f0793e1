#!/usr/bin/env bash
# bench-compare.sh [-d SECONDS] [--baseline URL] [options]
#
# Cistern against the real Zaqar 15, in one run on one machine. Builds
# cistern, cistern-bench and scripts/storebench; starts the local Swift
# (scripts/swift-aio.sh, Swift API + s3api) unless it already runs; starts
# Cistern on the fs driver, on Swift and on S3 (s3api), each on its own
# 127.0.0.1 port; starts Zaqar 15 on redis and on the same Swift
# (scripts/zaqar-ref.sh); measures the raw store PUT rate and the latency of
# one PUT (scripts/storebench); then runs every workload against every target,
# one target at a time, alternating, and prints one Markdown table with
# ratios against Zaqar on redis (or against --baseline URL). Whatever cannot be
# started is reported as such and skipped. Everything it started is stopped at
# the end; raw JSON results stay in the results dir.
#
# Options:
#   -d, --duration SECONDS   measured window of each run (default 20)
#   -w, --warmup SECONDS     unmeasured load before each window (default 3)
#   --rounds N               run every workload against every target N times,
#                            rotating the target order; the table shows the
#                            median round (default 1)
#   --baseline URL           use this running Zaqar(-compatible) endpoint as
#                            the baseline instead of starting Zaqar on redis
#   --baseline-project ID    X-Project-ID for the baseline (default: the run's)
#   --targets LIST           comma list from cistern-fs,cistern-fs-logs,
#                            cistern-swift,cistern-s3,zaqar-redis,zaqar-swift
#                            (default: all); cistern-fs-logs is Cistern on fs
#                            with engine.journal off (each queue's own logs),
#                            the baseline of the journal's checks
#   --workloads LIST         comma list from pcd,pcd64,post64,lat1,q1000,q1000-64
#                            (default: all)
#   --results DIR            where to write results (default
#                            ${TMPDIR:-/tmp}/cistern-bench-compare/<timestamp>)
#   --port-base N            ports N+1.. are used (default 18800)
#   --quiet-max SECONDS      before each run wait up to this long for the
#                            machine to be under --quiet-pct % busy (default 20)
#   --quiet-pct PCT          (default 50)
#   --keep-data              keep Cistern's fs data dir
#   --swift-user U --swift-key K
#                            the Swift account (tempauth) every Swift and S3
#                            target and the raw store measurement use (default
#                            test2:tester2 / testing2 of scripts/swift-aio.sh,
#                            so that benchmark data stays out of the test:tester
#                            account the test suites use); also the S3 keys
#   --report DIR             only print the table of an earlier run's results
#
# Workloads (1 KiB message bodies, claims of 10, ttl 3600):
#   pcd     post + claim + delete: 8 producers, 8 consumers, one queue, 1 msg/post
#   post64  64 producers posting 1 msg/post into one queue (store requests/msg)
#   lat1    1 producer posting 1 msg/post: the latency of a single post
#   q1000   1000 queues, one producer and one consumer on each (closed loop:
#           each queue sees about a thousandth of the total traffic)
#   pcd64   post + claim + delete: 64 producers, 64 consumers, one queue (the
#           one-queue baseline of q1000-64)
#   q1000-64  1000 queues, 64 producers and 64 consumers: worker i uses queue
#           i, so 64 queues carry the load and 936 are created and idle
# Every worker keeps one keep-alive connection. Zaqar is served the way
# scripts/zaqar-ref.sh serves it: 2 uWSGI workers behind uWSGI's HTTP router
# (with --http11-socket instead, two clients would hold both workers and the
# rest would starve). A request counts only if it starts and ends inside the
# window. Ports: Cistern fs/swift/s3 on N+1..N+3, Zaqar redis/swift on
# N+11/N+12 (their redis +10, the Keystone stand-in +20).
# Extra cistern-bench flags per workload: BENCH_ARGS_PCD, BENCH_ARGS_PCD64,
# BENCH_ARGS_POST64, BENCH_ARGS_LAT1, BENCH_ARGS_Q1000, BENCH_ARGS_Q1000_64
# (appended, so they override).
# The errors column counts failed requests by operation and kind (HTTP
# status, timeout, decode, net), and the queues the teardown could not
# delete (not in the total), in one cell:
# "9550: post 503×4823, claim 503×4720, delete 503×7; teardown 503×999".
#
# Shortest run (Cistern on fs only, nothing else started):
#   scripts/bench-compare.sh --targets cistern-fs -d 3 -w 1 --quiet-max 0
#
# Zaqar needs the two redis Lua scripts Debian's package lacks: set
# ZAQAR_LUA_DIR or ZAQAR_UPSTREAM_GIT (see scripts/zaqar-ref.sh).
set -euo pipefail
# One compound command, parsed whole before it runs: a run (of up to half
# an hour) is not thrown off when this file is edited meanwhile.
{

PROG=bench-compare
log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { printf '%s: ERROR: %s\n' "$PROG" "$*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit "${1:-2}"; }

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$REPO"

DURATION=20 WARMUP=3 ROUNDS=1 BASELINE_URL="" BASELINE_PROJECT="" PORT_BASE=18800
QUIET_MAX=20 QUIET_PCT=50 KEEP_DATA=0 SWIFT_USER=test2:tester2 SWIFT_KEY=testing2
ALL_TARGETS=(cistern-fs cistern-fs-logs cistern-swift cistern-s3 zaqar-redis zaqar-swift)
ALL_WORKLOADS=(pcd pcd64 post64 lat1 q1000 q1000-64)
TARGETS_ARG="" WORKLOADS_ARG="" REPORT_ONLY=""
STAMP=$(date -u +%Y%m%d-%H%M%S)
RESULTS=""

while [ $# -gt 0 ]; do
  case $1 in
    -d | --duration) DURATION=${2:?}; shift 2 ;;
    -w | --warmup) WARMUP=${2:?}; shift 2 ;;
    --rounds) ROUNDS=${2:?}; shift 2 ;;
    --baseline) BASELINE_URL=${2:?}; shift 2 ;;
    --baseline-project) BASELINE_PROJECT=${2:?}; shift 2 ;;
    --targets) TARGETS_ARG=${2:?}; shift 2 ;;
    --workloads) WORKLOADS_ARG=${2:?}; shift 2 ;;
    --results) RESULTS=${2:?}; shift 2 ;;
    --report) REPORT_ONLY=${2:?}; shift 2 ;;
    --port-base) PORT_BASE=${2:?}; shift 2 ;;
    --quiet-max) QUIET_MAX=${2:?}; shift 2 ;;
    --quiet-pct) QUIET_PCT=${2:?}; shift 2 ;;
    --keep-data) KEEP_DATA=1; shift ;;
    --swift-user) SWIFT_USER=${2:?}; shift 2 ;;
    --swift-key) SWIFT_KEY=${2:?}; shift 2 ;;
    -h | --help) usage 0 ;;
    *) log "unknown argument: $1"; usage ;;
  esac
done
for v in DURATION WARMUP ROUNDS PORT_BASE QUIET_MAX QUIET_PCT; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v=${!v}: want a whole number"
done
((DURATION > 0 && ROUNDS > 0)) || die "duration and rounds must be positive"

split_list() { # split_list "a,b" -> one per line
  tr -s ', ' '\n' <<<"$1" | sed '/^$/d'
}
if [ -n "$TARGETS_ARG" ]; then mapfile -t TARGETS < <(split_list "$TARGETS_ARG"); else TARGETS=("${ALL_TARGETS[@]}"); fi
if [ -n "$WORKLOADS_ARG" ]; then mapfile -t WORKLOADS < <(split_list "$WORKLOADS_ARG"); else WORKLOADS=("${ALL_WORKLOADS[@]}"); fi
for t in "${TARGETS[@]}"; do [[ " ${ALL_TARGETS[*]} " == *" $t "* ]] || die "unknown target $t"; done
for w in "${WORKLOADS[@]}"; do [[ " ${ALL_WORKLOADS[*]} " == *" $w "* ]] || die "unknown workload $w"; done
want_target() { [[ " ${TARGETS[*]} " == *" $1 "* ]]; }

# The baseline replaces Zaqar on redis.
BASE=zaqar-redis
if [ -n "$BASELINE_URL" ]; then
  BASE=baseline
  mapfile -t TARGETS < <(printf '%s\n' "${TARGETS[@]}" | grep -vx zaqar-redis)
  TARGETS=(baseline "${TARGETS[@]}")
elif ! want_target zaqar-redis; then
  BASE=""
fi

# The numbers a row needs, from one cistern-bench JSON report. msgs/s is
# messages consumed per second when the run has consumers, else posted per
# second.
# shellcheck disable=SC2016 # jq's $variables
SUMMARY_JQ='
  def lat($o; $q): (.ops[$o].latency_ms[$q] // null);
  (.config.consumers // 0) as $cons
  | has("teardown_errors") as $td
  | {
    posted_per_s: .posted.per_s,
    consumed_per_s: .consumed.per_s,
    post_p50: lat("post"; "p50"), post_p99: lat("post"; "p99"),
    claim_p50: lat("claim"; "p50"), claim_p99: lat("claim"; "p99"),
    delete_p50: lat("delete"; "p50"),
    store_per_msg: (if $cons > 0 then .store.per_consumed else .store.per_posted end),
    store_requests: .store.requests,
    errors: ([.ops[] | .errors // {} | to_entries[] | .value] | add // 0),
    # one short cell: failed requests by operation and kind, most first,
    # then the queues the teardown could not delete (not in the total,
    # which counts requests in the window)
    error_kinds: ([([.ops | to_entries[] | .key as $op | .value.errors // {} | to_entries[] | {k: "\($op) \(.key)", n: .value}]
        | sort_by(-.n, .k) | map("\(.k)×\(.n)") | join(", ")),
      (.teardown_errors // {} | to_entries | sort_by(-.value, .key) | map("\(.key)×\(.value)") | join(", ")
        | if . == "" then "" else "teardown " + . end)] | map(select(. != "")) | join("; ")),
    aborted: .aborted,
    # the teardown warning is counted in error_kinds when the report has
    # teardown_errors; reports written before that keep it, one line
    warnings: ([.warnings // [] | .[] | select(($td and startswith("deleting the queues")) | not)
      | split("\n")[] | select(. != "")] | group_by(.[:60])
      | map((.[0] | if length > 120 then .[:120] + "…" else . end) + (if length > 1 then " (×\(length))" else "" end))
      | join("; ")),
    nothing_in_window: (([.ops[] | .requests] | add // 0) == 0)
  }
  | .msgs_per_s = (if $cons > 0 then .consumed_per_s else .posted_per_s end)'

# shellcheck disable=SC2016 # jq's $variables
REPORT_JQ='
def r1: if . == null then null else (. * 10 | round / 10) end;
def r2: if . == null then null else (. * 100 | round / 100) end;
def f: if . == null then "–" else tostring end;
def median_by(f): sort_by(f) | .[(length - 1) / 2 | floor];
$meta[0] as $m
| (group_by(.target + " " + .workload) | map(median_by(.msgs_per_s // -1))) as $rows
| def row($t; $w): ($rows | map(select(.target == $t and .workload == $w)) | .[0]);
  def base($w): (if $m.baseline == "" then null else row($m.baseline; $w).msgs_per_s end);
  def ratio($a; $b): (if $a == null or $b == null or $b == 0 then null else ($a / $b) end);
  def put($s; $c): ($m.raw_store[$s].results // [] | map(select(.concurrency == $c)) | .[0]);
  def has($t): ($m.targets | index($t)) != null;
  def r3: if . == null then null elif . < 1 then (. * 1000 | round / 1000) else r2 end;
  def check($name; $value; $op; $limit):
    "| " + $name + " | " + ($value | r3 | f) + " | " + $op + " " + ($limit | tostring) + " | "
    + (if $value == null then "n/a" elif ($op == "≥" and $value >= $limit) or ($op == "≤" and $value <= $limit) then "PASS" else "FAIL" end) + " |";
  "# Cistern vs Zaqar 15 — \($m.stamp) (rev \($m.rev), \($m.host), \($m.duration_s) s windows, \($m.rounds) round(s))",
  "",
  "Baseline (ratio 1.00): " + (if $m.baseline == "" then "none" elif $m.baseline == "baseline" then $m.baseline_url else "Zaqar \($m.zaqar_version) on redis (uWSGI, 2 workers)" end) + ".",
  "msgs/s = messages claimed and deleted per second (posted per second when there are no consumers); latencies in ms; store req/msg from cistern_store_requests_total.",
  "",
  "| workload | target | msgs/s | × baseline | post p50 / p99 | claim p50 / p99 | store req/msg | errors | notes |",
  "|---|---|---:|---:|---:|---:|---:|---:|---|",
  ( $m.workloads[] as $w | $m.targets[] as $t | row($t; $w) | select(. != null)
    | "| \($w) | \($t) | \(.msgs_per_s | r1 | f) | \(ratio(.msgs_per_s; base($w)) | r2 | f) | \(.post_p50 | r2 | f) / \(.post_p99 | r2 | f) | \(.claim_p50 | r2 | f) / \(.claim_p99 | r2 | f) | \(.store_per_msg | if . == null then null else (. * 1000 | round / 1000) end | f) | \(.errors | f)\(if (.error_kinds // "") != "" then ": " + .error_kinds else "" end) | \([.note, (.warnings // ""), (if (.aborted // 0) > 0 then "\(.aborted) aborted" else "" end), (if .nothing_in_window then "no request both started and ended inside the window" else "" end), "cpu \(.cpu_busy_pct)% busy before"] | map(select(. != "")) | join("; ")) |" ),
  "",
  ( if ($m.not_started | length) > 0 then "Not measured:", "", ($m.not_started | to_entries[] | "- \(.key): \(.value)"), "" else empty end ),
  "Raw store (scripts/storebench: 1 KiB PUTs through the Cistern drivers):",
  "",
  "| store | c=1 puts/s | c=1 p50 / p99 ms | c=16 puts/s | c=64 puts/s | best puts/s |",
  "|---|---:|---:|---:|---:|---:|",
  ( $m.raw_store | to_entries[] | .key as $s
    | "| \($s) | \(put($s; 1).puts_per_sec | f) | \(put($s; 1).p50_ms | f) / \(put($s; 1).p99_ms | f) | \(put($s; 16).puts_per_sec | f) | \(put($s; 64).puts_per_sec | f) | \(.value.best_puts_per_sec | f) |" ),
  "",
  "Targets of the issue:",
  "",
  "| check | value | target | result |",
  "|---|---:|---|---|",
  (select(has("cistern-fs") and $m.baseline != "")
    | check("pcd: Cistern fs ÷ \(if $m.baseline == "baseline" then "baseline" else "Zaqar redis" end) (×)"; ratio(row("cistern-fs"; "pcd").msgs_per_s; row($m.baseline; "pcd").msgs_per_s); "≥"; 5)),
  (select(has("cistern-swift") and has("zaqar-swift"))
    | check("pcd: Cistern swift ÷ Zaqar swift (×)"; ratio(row("cistern-swift"; "pcd").msgs_per_s; row("zaqar-swift"; "pcd").msgs_per_s); "≥"; 100)),
  (select(has("cistern-swift"))
    | check("pcd: Cistern swift ÷ best raw Swift PUT rate (×)"; ratio(row("cistern-swift"; "pcd").msgs_per_s; $m.raw_store.swift.best_puts_per_sec); "≥"; 5)),
  ( ["cistern-fs", "cistern-swift", "cistern-s3"][] as $t | select(has($t))
    | check("post64: \($t) store requests per message"; row($t; "post64").store_per_msg; "≤"; 0.05),
      check("lat1: \($t) post p50 ÷ one \($m.target_store[$t] // "?") PUT p50 (×)"; ratio(row($t; "lat1").post_p50; put($m.target_store[$t] // ""; 1).p50_ms); "≤"; 1.2),
      check("q1000: \($t) 1000-queue ÷ one-queue msgs/s (×)"; ratio(row($t; "q1000").msgs_per_s; row($t; "pcd").msgs_per_s); "≥"; 0.5),
      check("q1000-64: \($t) 1000-queue ÷ one-queue (pcd64) msgs/s (×)"; ratio(row($t; "q1000-64").msgs_per_s; row($t; "pcd64").msgs_per_s); "≥"; 0.8),
      check("q1000-64: \($t) store requests per consumed message"; row($t; "q1000-64").store_per_msg; "≤"; 0.1) ),
  (select(has("cistern-fs") and has("cistern-fs-logs"))
    | (["pcd", "post64", "q1000", "q1000-64"][] as $w
       | check("\($w): Cistern fs, journal ÷ per-queue logs (×)"; ratio(row("cistern-fs"; $w).msgs_per_s; row("cistern-fs-logs"; $w).msgs_per_s); "≥"; (if $w | startswith("q1000") then 1 else 0.9 end))),
      check("lat1: Cistern fs post p50, journal ÷ own logs (×)"; ratio(row("cistern-fs"; "lat1").post_p50; row("cistern-fs-logs"; "lat1").post_p50); "≤"; 1.1)),
  (select(has("cistern-fs") and $m.baseline != "")
    | check("q1000: Cistern fs ÷ \(if $m.baseline == "baseline" then "baseline" else "Zaqar redis" end) (×)"; ratio(row("cistern-fs"; "q1000").msgs_per_s; row($m.baseline; "q1000").msgs_per_s); "≥"; 5)),
  "",
  "Raw results: \($m.results)/"
'
# print_report: the Markdown summary of $RESULTS (runs.jsonl, meta.json),
# also written to summary.md
print_report() {
  jq -sr --slurpfile meta <(jq --arg results "$RESULTS" '. + {results: $results}' "$RESULTS/meta.json") \
    "$REPORT_JQ" "$RESULTS/runs.jsonl" | tee "$RESULTS/summary.md"
}

# --report DIR: recompute the rows from the JSON reports kept in DIR and
# print the table again
if [ -n "$REPORT_ONLY" ]; then
  RESULTS=$(cd "$REPORT_ONLY" && pwd -P) || die "no results dir $REPORT_ONLY"
  if [ ! -s "$RESULTS/runs.jsonl" ] || [ ! -s "$RESULTS/meta.json" ]; then die "$RESULTS has no runs.jsonl and meta.json"; fi
  tmp=$(mktemp)
  while IFS= read -r line; do
    f=$RESULTS/$(jq -r .file <<<"$line")
    if [ -s "$f" ] && jq -e . "$f" >/dev/null 2>&1; then
      jq -c --argjson old "$line" "$SUMMARY_JQ"' | $old + .' "$f"
    else
      printf '%s\n' "$line"
    fi
  done <"$RESULTS/runs.jsonl" >"$tmp"
  mv "$tmp" "$RESULTS/runs.jsonl"
  print_report
  exit 0
fi

RESULTS=${RESULTS:-${TMPDIR:-/tmp}/cistern-bench-compare/$STAMP}
mkdir -p "$RESULTS"
RESULTS=$(cd "$RESULTS" && pwd -P)
WORK=$RESULTS/work
BIN=$WORK/bin
LOGS=$RESULTS/logs
mkdir -p "$BIN" "$LOGS"
PROJECT=bench-$STAMP
RUNS=$RESULTS/runs.jsonl
: >"$RUNS"

command -v jq >/dev/null || die "jq is needed (apt-get install jq)"
command -v curl >/dev/null || die "curl is needed"

# ------------------------------------------------------------ cleanup
CISTERN_PIDS=()
ZAQAR_STARTED=() # "port dir" of each instance zaqar-ref.sh started for us
SWIFT_STARTED=0
BENCH_PID=""
# shellcheck disable=SC2317 # reached through the trap
cleanup() {
  local rc=$? p z
  trap - EXIT INT TERM
  if [ -n "$BENCH_PID" ]; then kill -TERM "$BENCH_PID" 2>/dev/null || true; wait "$BENCH_PID" 2>/dev/null || true; fi
  for p in "${CISTERN_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${CISTERN_PIDS[@]}"; do
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  for z in "${ZAQAR_STARTED[@]}"; do
    ZAQAR_PORT=${z%% *} ZAQAR_REF_DIR=${z#* } scripts/zaqar-ref.sh stop >>"$LOGS/zaqar-ref.log" 2>&1 || true
  done
  if [ "$SWIFT_STARTED" = 1 ]; then scripts/swift-aio.sh stop >>"$LOGS/swift-aio.log" 2>&1 || true; fi
  if [ "$KEEP_DATA" = 0 ]; then rm -rf "$WORK/fs-data" "$WORK/storebench-fs"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------ build
log "building into $BIN"
go build -o "$BIN/cistern" ./cmd/cistern || die "cmd/cistern does not build"
go build -o "$BIN/cistern-bench" ./cmd/cistern-bench || die "cmd/cistern-bench does not build"
go build -o "$BIN/storebench" ./scripts/storebench || die "scripts/storebench does not build"

# ------------------------------------------------------------ targets
declare -A T_URL=() T_METRICS=() T_NOTE=() T_STORE=() T_PROJECT=()
note() { T_NOTE[$1]=$2; log "$1: $2"; }

http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time "${2:-2}" "$1" 2>/dev/null || true; }
wait_up() { # wait_up URL SECONDS [PID]: any HTTP answer
  local i c
  for ((i = 0; i < $2 * 10; i++)); do
    c=$(http_code "$1")
    [[ -n $c && $c != 000 ]] && return 0
    if [ -n "${3:-}" ] && ! kill -0 "$3" 2>/dev/null; then return 1; fi
    sleep 0.1
  done
  return 1
}

SWIFT_UP=0
need_swift() { want_target cistern-swift || want_target cistern-s3 || want_target zaqar-swift; }
if need_swift; then
  if scripts/swift-aio.sh status >/dev/null 2>&1; then
    log "using the running local Swift"
  else
    SWIFT_STARTED=1
  fi
  if swift_env=$(scripts/swift-aio.sh start 2>>"$LOGS/swift-aio.log"); then
    eval "$swift_env"
    # the benchmark's own account, for Swift and S3 (s3api keys = tempauth)
    export CISTERN_SWIFT_USER=$SWIFT_USER CISTERN_SWIFT_KEY=$SWIFT_KEY
    export CISTERN_S3_ACCESS_KEY=$SWIFT_USER CISTERN_S3_SECRET_KEY=$SWIFT_KEY
    SWIFT_UP=1
  else
    reason="local Swift did not start (see $LOGS/swift-aio.log)"
    for t in cistern-swift cistern-s3 zaqar-swift; do want_target "$t" && note "$t" "not started: $reason"; done
  fi
fi

# start_cistern NAME PORT STORE FLAGS...
start_cistern() {
  local name=$1 port=$2 store=$3 pid
  shift 3
  T_STORE[$name]=$store
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    note "$name" "not started: 127.0.0.1:$port is in use (see --port-base)"
    return 0
  fi
  # /metrics (store requests per message) is served on a listener of its
  # own, never on the public one; port + 40 is free of the other targets.
  "$BIN/cistern" -listen "127.0.0.1:$port" -metrics-listen "127.0.0.1:$((port + 40))" -log-level warn "$@" >>"$LOGS/$name.log" 2>&1 &
  pid=$!
  CISTERN_PIDS+=("$pid")
  if wait_up "http://127.0.0.1:$port/" 90 "$pid"; then
    T_URL[$name]=http://127.0.0.1:$port
    T_METRICS[$name]=http://127.0.0.1:$((port + 40))/metrics
    [ "$(http_code "${T_METRICS[$name]}")" = 200 ] || T_METRICS[$name]=""
    log "$name up on ${T_URL[$name]} (pid $pid)"
  else
    note "$name" "not started: $(sed 's/\x1b\[[0-9;]*m//g; /^\s*$/d' "$LOGS/$name.log" | tail -n 2 | tr '\n' ' ' | cut -c1-200)"
  fi
}

if want_target cistern-fs; then
  mkdir -p "$WORK/fs-data"
  start_cistern cistern-fs $((PORT_BASE + 1)) fs -driver fs -data "$WORK/fs-data"
fi
if want_target cistern-fs-logs; then
  mkdir -p "$WORK/fs-logs-data"
  printf 'engine:\n  journal: false\n' >"$WORK/logs.yaml"
  start_cistern cistern-fs-logs $((PORT_BASE + 4)) fs -config "$WORK/logs.yaml" -driver fs -data "$WORK/fs-logs-data"
fi
if [ "$SWIFT_UP" = 1 ]; then
  if want_target cistern-swift; then start_cistern cistern-swift $((PORT_BASE + 2)) swift -driver swift \
    -swift-auth-url "$CISTERN_SWIFT_AUTH_URL" -swift-user "$CISTERN_SWIFT_USER" -swift-key "$CISTERN_SWIFT_KEY"
  fi
  if want_target cistern-s3; then start_cistern cistern-s3 $((PORT_BASE + 3)) s3 -driver s3 \
    -s3-endpoint "$CISTERN_S3_ENDPOINT" -s3-bucket "cistern-bench-$STAMP" -s3-region "${CISTERN_S3_REGION:-us-east-1}" \
    -s3-access-key "$CISTERN_S3_ACCESS_KEY" -s3-secret-key "$CISTERN_S3_SECRET_KEY"
  fi
fi

# start_zaqar NAME PORT BACKEND
start_zaqar() {
  local name=$1 port=$2 backend=$3 dir=$WORK/$1 out
  T_STORE[$name]=$backend
  ZAQAR_STARTED+=("$port $dir")
  if out=$(ZAQAR_PORT=$port ZAQAR_REDIS_PORT=$((port + 10)) ZAQAR_KEYSTONE_PORT=$((port + 20)) \
    ZAQAR_BACKEND=$backend ZAQAR_REF_DIR=$dir scripts/zaqar-ref.sh start 2>>"$LOGS/zaqar-ref.log"); then
    T_URL[$name]=http://127.0.0.1:$port
    log "$name up on ${T_URL[$name]}"
  else
    note "$name" "not started: $(grep 'ERROR' "$LOGS/zaqar-ref.log" | tail -n 1 | sed 's/^zaqar-ref: ERROR: //' | cut -c1-200) (log: $LOGS/zaqar-ref.log)"
  fi
  : "$out"
}
if [ -n "$BASELINE_URL" ]; then
  T_URL[baseline]=${BASELINE_URL%/}
  T_STORE[baseline]=""
  T_PROJECT[baseline]=${BASELINE_PROJECT:-$PROJECT}
  wait_up "${T_URL[baseline]}/" 5 || note baseline "not reachable: ${T_URL[baseline]}"
elif want_target zaqar-redis; then
  start_zaqar zaqar-redis $((PORT_BASE + 11)) redis
fi
if want_target zaqar-swift; then
  if [ "$SWIFT_UP" = 1 ]; then start_zaqar zaqar-swift $((PORT_BASE + 12)) swift; fi
fi

# ------------------------------------------------------------ machine noise
cpu_busy() { # percent busy over 1 s
  local -a a b
  read -ra a </proc/stat
  sleep 1
  read -ra b </proc/stat
  local i ta=0 tb=0
  for i in 1 2 3 4 5 6 7 8; do ta=$((ta + a[i])); tb=$((tb + b[i])); done
  local idle=$(((b[4] + b[5]) - (a[4] + a[5]))) tot=$((tb - ta))
  echo $((tot > 0 ? 100 * (tot - idle) / tot : 0))
}
BUSY=0
wait_quiet() {
  local t0=$SECONDS
  while :; do
    BUSY=$(cpu_busy)
    ((BUSY < QUIET_PCT)) && break
    ((SECONDS - t0 >= QUIET_MAX)) && break
  done
}

# ------------------------------------------------------------ raw store
STORE_DUR=$((DURATION < 10 ? DURATION : 10))
for s in fs swift s3; do
  case $s in
    fs) want_target cistern-fs || continue ;;
    swift) if [ "$SWIFT_UP" = 0 ] || ! { want_target cistern-swift || want_target zaqar-swift; }; then continue; fi ;;
    s3) if [ "$SWIFT_UP" = 0 ] || ! want_target cistern-s3; then continue; fi ;;
  esac
  wait_quiet
  log "raw $s PUT rate and latency (1 KiB; c=1,16,64; ${STORE_DUR}s each)"
  args=(-driver "$s" -size 1024 -c "1,16,64" -duration "${STORE_DUR}s" -json)
  case $s in
    fs) args+=(-dir "$WORK/storebench-fs") ;;
    s3) args+=(-s3-bucket "cistern-storebench-$STAMP") ;;
  esac
  if ! "$BIN/storebench" "${args[@]}" >"$RESULTS/store-$s.json" 2>>"$LOGS/storebench.log"; then
    log "storebench $s failed (see $LOGS/storebench.log)"
    rm -f "$RESULTS/store-$s.json"
  fi
done

# ------------------------------------------------------------ workloads
# workload_args NAME: sets WL_ARGS to its cistern-bench flags
workload_args() {
  local extra=() var
  WL_ARGS=(-size 1024 -batch 1 -claim-limit 10 -ttl 3600 -grace 60s)
  case $1 in
    pcd) WL_ARGS+=(-queues 1 -producers 8 -consumers 8) ;;
    pcd64) WL_ARGS+=(-queues 1 -producers 64 -consumers 64) ;;
    post64) WL_ARGS+=(-queues 1 -producers 64 -consumers 0) ;;
    lat1) WL_ARGS+=(-queues 1 -producers 1 -consumers 0) ;;
    # setup and teardown of 1000 queues happen inside the deadline
    q1000) WL_ARGS+=(-queues 1000 -producers 1000 -consumers 1000 -grace 240s) ;;
    q1000-64) WL_ARGS+=(-queues 1000 -producers 64 -consumers 64 -grace 240s) ;;
  esac
  var=BENCH_ARGS_${1^^}
  var=${var//-/_}
  read -ra extra <<<"${!var:-}"
  WL_ARGS+=("${extra[@]}")
}

# run_one TARGET WORKLOAD ROUND
run_one() {
  local t=$1 wl=$2 r=$3 out=$RESULTS/$2-$1-r$3.json rc=0 limit args note=""
  workload_args "$wl"
  args=("${WL_ARGS[@]}" -url "${T_URL[$t]}" -project "${T_PROJECT[$t]:-$PROJECT}" -prefix "$wl-r$r-"
    -duration "${DURATION}s" -warmup "${WARMUP}s" -json)
  args+=(-metrics "${T_METRICS[$t]:-off}")
  wait_quiet
  local load
  load=$(cut -d' ' -f1 /proc/loadavg)
  limit=$((WARMUP + DURATION + 300))
  log "$wl r$r $t (cpu ${BUSY}% busy, load $load)"
  printf '%s\n' "${args[*]}" >"$out.args"
  # in the background, so that a signal reaches the trap at once
  timeout -k 10 "$limit" "$BIN/cistern-bench" "${args[@]}" >"$out" 2>"$out.err" &
  BENCH_PID=$!
  wait "$BENCH_PID" || rc=$?
  BENCH_PID=""
  if [ $rc -ne 0 ]; then
    note="cistern-bench exit $rc: $(grep -v '^\s*$' "$out.err" | tail -n 1 | cut -c1-160)"
    log "$wl r$r $t: $note"
  fi
  local sum='{}'
  if [ -s "$out" ] && jq -e . "$out" >/dev/null 2>&1; then
    sum=$(jq -c "$SUMMARY_JQ" "$out") || sum='{}'
  elif [ -z "$note" ]; then
    note="no JSON report"
  fi
  jq -nc --arg t "$t" --arg w "$wl" --argjson r "$r" --arg note "$note" --argjson busy "$BUSY" \
    --arg load "$load" --arg file "${out##*/}" --argjson s "$sum" \
    '$s + {target: $t, workload: $w, round: $r, note: $note, cpu_busy_pct: $busy, load1: ($load | tonumber), file: $file}' >>"$RUNS"
}

UP_TARGETS=()
for t in "${TARGETS[@]}"; do [ -n "${T_URL[$t]:-}" ] && [ -z "${T_NOTE[$t]:-}" ] && UP_TARGETS+=("$t"); done
[ ${#UP_TARGETS[@]} -gt 0 ] || die "no target could be started"
log "targets up: ${UP_TARGETS[*]}; workloads: ${WORKLOADS[*]}; ${DURATION}s each, $ROUNDS round(s); results in $RESULTS"

for wl in "${WORKLOADS[@]}"; do
  for ((r = 1; r <= ROUNDS; r++)); do
    n=${#UP_TARGETS[@]}
    for ((i = 0; i < n; i++)); do
      run_one "${UP_TARGETS[$(((i + r - 1) % n))]}" "$wl" "$r"
    done
  done
done

# ------------------------------------------------------------ report
notes_json=$(for t in "${!T_NOTE[@]}"; do jq -nc --arg t "$t" --arg n "${T_NOTE[$t]}" '{($t): $n}'; done | jq -sc 'add // {}')
stores_json=$(for t in "${!T_STORE[@]}"; do jq -nc --arg t "$t" --arg n "${T_STORE[$t]}" '{($t): $n}'; done | jq -sc 'add // {}')
store_json=$(for s in fs swift s3; do
  if [ -s "$RESULTS/store-$s.json" ]; then jq -c --arg s "$s" '{($s): .}' "$RESULTS/store-$s.json"; fi
done | jq -sc 'add // {}')
targets_json=$(printf '%s\n' "${TARGETS[@]}" | jq -Rsc 'split("\n") | map(select(. != ""))')
workloads_json=$(printf '%s\n' "${WORKLOADS[@]}" | jq -Rsc 'split("\n") | map(select(. != ""))')
jq -n --arg stamp "$STAMP" --arg rev "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
  --arg base "$BASE" --argjson duration "$DURATION" --argjson rounds "$ROUNDS" \
  --argjson notes "$notes_json" --argjson stores "$stores_json" --argjson store "$store_json" \
  --argjson targets "$targets_json" --argjson workloads "$workloads_json" \
  --arg baseline_url "$BASELINE_URL" --arg zaqar "$(dpkg-query -W -f '${Version}' python3-zaqar 2>/dev/null || true)" \
  --arg host "$(uname -n) $(nproc) cpus" \
  '{stamp: $stamp, rev: $rev, baseline: $base, baseline_url: $baseline_url, duration_s: $duration, rounds: $rounds,
    targets: $targets, workloads: $workloads, not_started: $notes, target_store: $stores, raw_store: $store,
    zaqar_version: $zaqar, host: $host}' >"$RESULTS/meta.json"
print_report
exit 0
}
