#!/usr/bin/env bash
# bench-cluster.sh [-d SECONDS] [--store fs|swift] [--results DIR]
#
# Cluster mode against a single node, in one run on one machine (docs/cluster.md,
# "Measured"). Builds cistern and cistern-bench, starts etcd (scripts/etcd.sh)
# and, for --store swift, the local Swift (scripts/swift-aio.sh), then:
#
#   forward   pcd (8 producers, 8 consumers, one queue) through the queue's
#             owner, then through a node that forwards every request to it:
#             the ratio is what a forward costs.
#   scale     q1000-64 (1000 queues, 64 producers and 64 consumers) split over
#             three cistern-bench processes: all three against one single node
#             (no etcd), then one against each of three cluster nodes: the
#             ratio is the coordination overhead (this machine's cores are
#             shared by all nodes, so it is not a scale-out number).
#   etcd      post64 (64 producers, one queue) and q1000-64 on the cluster:
#             etcd requests (all kinds, every node) per posted message, from
#             the nodes' cistern_etcd_request_seconds_count.
#
# Every server listens on 127.0.0.1; everything started is stopped at the end;
# the raw JSON of each run stays in the results dir. Ratios, not absolute rates,
# are what to compare between machines.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=15 WARMUP=3 STORE=fs PORT_BASE=18700
RESULTS="${TMPDIR:-/tmp}/cistern-bench-cluster/$(date -u +%Y%m%d-%H%M%S)"
while [ $# -gt 0 ]; do
  case $1 in
    -d|--duration) DURATION=$2; shift 2 ;;
    -w|--warmup) WARMUP=$2; shift 2 ;;
    --store) STORE=$2; shift 2 ;;
    --results) RESULTS=$2; shift 2 ;;
    --port-base) PORT_BASE=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-cluster.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
case $STORE in fs|swift) ;; *) echo "bench-cluster.sh: --store fs or swift" >&2; exit 2 ;; esac
mkdir -p "$RESULTS"
# Queue names carry the run's tag: an etcd that outlives the run keeps no
# head that a later run's queue of the same name would find.
TAG=$(date +%s)
log() { echo "bench-cluster: $*" >&2; }

BIN="$RESULTS/bin"
mkdir -p "$BIN"
go build -o "$BIN/cistern" ./cmd/cistern
go build -o "$BIN/cistern-bench" ./cmd/cistern-bench

stops=()
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  for s in "${stops[@]}"; do scripts/$s >/dev/null 2>&1 || true; done
}
trap cleanup EXIT

if ! scripts/etcd.sh status >/dev/null 2>&1; then stops+=("etcd.sh stop"); fi
out=$(scripts/etcd.sh start) || { log "scripts/etcd.sh start failed"; exit 1; }
eval "$out"
PREFIX_ETCD="$CISTERN_ETCD"
unset CISTERN_ETCD # the single node of the scale run must not join
STORE_ARGS=()
if [ "$STORE" = swift ]; then
  if ! scripts/swift-aio.sh status >/dev/null 2>&1; then stops+=("swift-aio.sh stop"); fi
  out=$(scripts/swift-aio.sh start) || { log "scripts/swift-aio.sh start failed"; exit 1; }
  eval "$out"
  # The benchmark account, apart from the test suites' (as bench-compare.sh).
  STORE_ARGS=(-driver swift -swift-auth-url "$CISTERN_SWIFT_AUTH_URL" -swift-user test2:tester2 -swift-key testing2)
fi

# node NAME PORT ADMINPORT [cistern flags...]: start one cistern, wait for it.
node() {
  local name=$1 port=$2 admin=$3; shift 3
  local data="$RESULTS/data-$RUN"
  "$BIN/cistern" -listen 127.0.0.1:$port -admin-listen 127.0.0.1:$admin -data "$data" \
    -log-level warn "${STORE_ARGS[@]}" "$@" >"$RESULTS/$RUN-$name.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 300); do
    if curl -fsS -o /dev/null http://127.0.0.1:$port/healthz 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  log "$name did not come up: $(tail -5 "$RESULTS/$RUN-$name.log")"; exit 1
}
stop_all() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
# cluster3: three nodes of a fresh cluster (own etcd prefix is not a flag, so
# each run uses fresh node ids and a fresh data dir; the shared etcd keys of
# earlier runs name other containers and are harmless).
cluster3() {
  for i in 1 2 3; do
    CISTERN_ETCD=$PREFIX_ETCD node n$i $((PORT_BASE + i)) $((PORT_BASE + 10 + i)) \
      -node-id "$RUN-n$i" -advertise http://127.0.0.1:$((PORT_BASE + i))
  done
}
# bench OUT URL [flags]: one cistern-bench run, JSON to OUT.
bench() {
  local out=$1 url=$2; shift 2
  "$BIN/cistern-bench" -url "$url" -project bench -warmup ${WARMUP}s -duration ${DURATION}s \
    -size 1024 -ttl 3600 -claim-limit 10 -metrics off -json "$@" >"$RESULTS/$out.json"
}
rate() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["posted"]["per_s"])' "$RESULTS/$1.json"; }
consumed() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["consumed"]["per_s"])' "$RESULTS/$1.json"; }
posted() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["posted"]["messages"])' "$RESULTS/$1.json"; }
# etcd_requests: the etcd requests of every cluster node so far.
etcd_requests() {
  local total=0 n
  for i in 1 2 3; do
    n=$(curl -fsS http://127.0.0.1:$((PORT_BASE + 10 + i))/metrics |
      awk '/^cistern_etcd_request_seconds_count/ {s += $2} END {printf "%d", s}')
    total=$((total + n))
  done
  echo $total
}

# --- forward ---
RUN=fwd
cluster3
curl -fsS -o /dev/null -X PUT -H 'X-Project-ID: bench' -H 'Client-ID: 3381af92-2b9e-11e3-b191-71861300734c' \
  http://127.0.0.1:$((PORT_BASE + 1))/v2/queues/fwd$TAG-0
loc=$(curl -fsS -H 'X-Project-ID: bench' -H 'Client-ID: 3381af92-2b9e-11e3-b191-71861300734c' http://127.0.0.1:$((PORT_BASE + 11))/v2/queues/fwd$TAG-0/pool)
owner=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d.get("owner") or "http://127.0.0.1:'$((PORT_BASE + 1))'")' "$loc")
other=""
for i in 1 2 3; do
  u=http://127.0.0.1:$((PORT_BASE + i))
  if [ "$u" != "$owner" ]; then other=$u; break; fi
done
log "forward: queue fwd$TAG-0 is owned by $owner; forwarding through $other"
bench fwd-owner "$owner" -prefix fwd$TAG- -queues 1 -producers 8 -consumers 8 -keep
bench fwd-forwarded "$other" -prefix fwd$TAG- -queues 1 -producers 8 -consumers 8
stop_all

# --- scale: one node, then three ---
RUN=single
node s1 $((PORT_BASE + 21)) $((PORT_BASE + 31))
for k in 0 1 2; do
  bench single-$k http://127.0.0.1:$((PORT_BASE + 21)) -prefix q$TAG-$k- -queues 334 -producers 21 -consumers 21 -grace 240s &
  bp[$k]=$!
done
for k in 0 1 2; do wait ${bp[$k]}; done
stop_all

RUN=scale
cluster3
# A short run first creates and loads the queues (with -keep), so that the
# etcd requests counted are those of the measured run's traffic, not of
# creating 1,000 queues; the measured run deletes them at its end, which is
# counted too (about one request per queue: a small share at these rates).
for k in 0 1 2; do
  "$BIN/cistern-bench" -url http://127.0.0.1:$((PORT_BASE + 1 + k)) -project bench -prefix q$TAG-$k- -queues 334 \
    -producers 0 -consumers 0 -observers 1 -warmup 0s -duration 1s -grace 240s -metrics off -keep >/dev/null &
  bp[$k]=$!
done
for k in 0 1 2; do wait ${bp[$k]} || log "priming run $k failed; the measured run creates what is missing"; done
e0=$(etcd_requests)
for k in 0 1 2; do
  bench cluster-$k http://127.0.0.1:$((PORT_BASE + 1 + k)) -prefix q$TAG-$k- -queues 334 -producers 21 -consumers 21 -grace 240s &
  bp[$k]=$!
done
for k in 0 1 2; do wait ${bp[$k]}; done
e1=$(etcd_requests)

# --- etcd per message at 64 producers, one queue ---
bench post64 http://127.0.0.1:$((PORT_BASE + 1)) -prefix p$TAG- -queues 1 -producers 64 -consumers 0 -batch 1
e2=$(etcd_requests)
stop_all

python3 - "$RESULTS" "$STORE" "$e0" "$e1" "$e2" <<'EOF'
import json, sys, os
res, store, e0, e1, e2 = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])
def j(n): return json.load(open(os.path.join(res, n + ".json")))
def s(names, k): return sum(j(n)[k]["per_s"] for n in names)
def m(names, k): return sum(j(n)[k]["messages"] for n in names)
o, f = j("fwd-owner"), j("fwd-forwarded")
single = ["single-%d" % k for k in range(3)]
clus = ["cluster-%d" % k for k in range(3)]
rows = [
  ("pcd through the owner, posted/s", o["posted"]["per_s"], None),
  ("pcd through another node (forwarded), posted/s", f["posted"]["per_s"], f["posted"]["per_s"] / max(o["posted"]["per_s"], 1e-9)),
  ("q1000-64 on one node, consumed/s", s(single, "consumed"), None),
  ("q1000-64 on three nodes, consumed/s", s(clus, "consumed"), s(clus, "consumed") / max(s(single, "consumed"), 1e-9)),
  ("etcd requests per posted message, q1000-64 on three nodes", (e1 - e0) / max(m(clus, "posted"), 1), None),
  ("etcd requests per posted message, post64 (64 producers, one queue)", (e2 - e1) / max(j("post64")["posted"]["messages"], 1), None),
]
print("| measure (%s) | value | ratio |" % store)
print("|---|---|---|")
for name, v, r in rows:
    print("| %s | %.3g | %s |" % (name, v, "%.2f" % r if r is not None else ""))
EOF
log "results in $RESULTS"
