#!/usr/bin/env bash
# etcd.sh [start|stop|wipe|status|env]
#
# A real etcd (Debian's `etcd-server` package) for tests and CI: one member
# on 127.0.0.1, for Cistern's cluster mode (CISTERN_ETCD). Everything (data,
# log, pid file) lives in one state dir; the package's own service is not
# used.
#
#   out=$(scripts/etcd.sh start) && eval "$out"   # stdout: only `export CISTERN_ETCD=...`;
#                                  # a failed start exits non-zero: never eval "$(... start)", which hides it
#   go test ./cluster/
#   scripts/etcd.sh stop               # stop, keep the data
#   scripts/etcd.sh wipe               # stop and delete the state dir
#
# start   installs etcd-server with apt-get if `etcd` is missing, then starts
#         the member. Already running and healthy: a fast no-op. Exits
#         non-zero, with the log's tail, when it cannot start.
# stop    stops only the etcd this script started for this state dir.
# wipe    stops it and deletes the state dir.
# status  exit 0 when the member answers /health with {"health":"true"}.
# env     prints the export line without starting anything.
#
# Environment (defaults):
#   CISTERN_ETCD_DIR=${TMPDIR:-/tmp}/cistern-etcd   state dir
#   CISTERN_ETCD_PORT=12379          client URL port (not 2379: a system etcd may have it)
#   CISTERN_ETCD_PEER_PORT=12380     peer URL port
#   CISTERN_ETCD_START_TIMEOUT=30    seconds to wait for /health
set -euo pipefail

PROG=etcd
log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { printf '%s: ERROR: %s\n' "$PROG" "$*" >&2; exit 1; }
now_ms() { local t=${EPOCHREALTIME/[.,]/}; echo $((t / 1000)); }
T0=$(now_ms)
elapsed() { local ms=$(($(now_ms) - T0)); printf '%d.%02d' $((ms / 1000)) $((ms % 1000 / 10)); }

STATE_DIR=${CISTERN_ETCD_DIR:-${TMPDIR:-/tmp}/cistern-etcd}
PORT=${CISTERN_ETCD_PORT:-12379}
PEER_PORT=${CISTERN_ETCD_PEER_PORT:-12380}
START_TIMEOUT=${CISTERN_ETCD_START_TIMEOUT:-30}
URL=http://127.0.0.1:$PORT
PEER_URL=http://127.0.0.1:$PEER_PORT

PACKAGES=(etcd-server curl)
BINARIES=(etcd curl)

set_paths() {
  DATA=$STATE_DIR/data LOGDIR=$STATE_DIR/log RUN=$STATE_DIR/run
  # etcd carries this in its environment; stop only signals a process that
  # does (guards against reused pids).
  MARKER="CISTERN_ETCD_STATE=$STATE_DIR"
}

print_env() { echo "export CISTERN_ETCD=$URL"; }

# ------------------------------------------------------------ processes
# pid is alive, not a zombie, and was started by us for this state dir
ours() {
  local st e
  local -a envs
  [[ ${1:-} =~ ^[0-9]+$ ]] || return 1
  { read -r st <"/proc/$1/stat"; } 2>/dev/null || return 1
  st=${st##*) } st=${st%% *}
  [[ $st != [ZX] ]] || return 1
  { mapfile -d '' envs <"/proc/$1/environ"; } 2>/dev/null || return 1
  for e in "${envs[@]}"; do [[ $e == "$MARKER" ]] && return 0; done
  return 1
}

alive() { ours "$(cat "$RUN/etcd.pid" 2>/dev/null)"; }

# stop_etcd [SIGNAL]: TERM (or KILL) our etcd, wait up to 10 s, then KILL it.
stop_etcd() {
  local sig=${1:-TERM} pid
  pid=$(cat "$RUN/etcd.pid" 2>/dev/null) || return 0
  if ours "$pid"; then
    log "stopping etcd $pid (SIG$sig)"
    kill -"$sig" "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
      ours "$pid" || break
      sleep 0.1
    done
    if ours "$pid"; then
      log "KILL $pid"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$RUN/etcd.pid"
}

# ------------------------------------------------------------ install
install_packages() {
  local b missing=0
  for b in "${BINARIES[@]}"; do command -v "$b" >/dev/null || missing=1; done
  [ $missing -eq 1 ] || return 0

  local -a sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "etcd is not installed and we are not root: apt-get install ${PACKAGES[*]}"
    sudo=(sudo)
  fi
  log "installing ${PACKAGES[*]} with apt-get"
  # Don't let the package start its own etcd (port 2379): the standard
  # policy-rc.d switch, only if the host has none (Docker images ship one).
  local policy=/usr/sbin/policy-rc.d added_policy=0
  if [ ! -e $policy ]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee $policy >/dev/null
    "${sudo[@]}" chmod 755 $policy
    added_policy=1
  fi
  local -a apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive
    apt-get -y -q -o DPkg::Lock::Timeout=600)
  local rc=0
  if ! compgen -G '/var/lib/apt/lists/*_Packages' >/dev/null; then
    "${apt[@]}" update >&2 || rc=$?
  fi
  if [ $rc -eq 0 ] && ! "${apt[@]}" install "${PACKAGES[@]}" >&2; then
    "${apt[@]}" update >&2 && "${apt[@]}" install "${PACKAGES[@]}" >&2 || rc=$?
  fi
  [ $added_policy -eq 0 ] || "${sudo[@]}" rm -f $policy
  [ $rc -eq 0 ] || die "apt-get install ${PACKAGES[*]} failed"
  for b in "${BINARIES[@]}"; do command -v "$b" >/dev/null || die "$b still missing after install"; done
}

# ------------------------------------------------------------ readiness
healthy() { curl -sf --max-time 2 "$URL/health" 2>/dev/null | grep -q '"health":"true"'; }

# ready TIMEOUT: /health says true, retried until TIMEOUT seconds passed
ready() {
  local deadline=$(($(now_ms) + $1 * 1000))
  while :; do
    healthy && return 0
    [ "$(now_ms)" -lt $deadline ] || return 1
    alive || return 1
    sleep 0.1
  done
}

# ------------------------------------------------------------ commands
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

fail() {
  printf -- '---- %s\n' "$LOGDIR/etcd.log" >&2
  tail -n 20 "$LOGDIR/etcd.log" >&2 || true
  stop_etcd
  die "$1 (log in $LOGDIR/etcd.log)"
}

cmd_start() {
  mkdir -p "$STATE_DIR"
  STATE_DIR=$(cd "$STATE_DIR" && pwd -P)
  set_paths

  if alive && healthy; then
    print_env
    log "already running ($(elapsed)s; state $STATE_DIR)"
    return 0
  fi
  if [ -d "$RUN" ]; then stop_etcd; fi

  install_packages
  local p
  for p in "$PORT" "$PEER_PORT"; do
    ! port_busy "$p" || die "127.0.0.1:$p is already in use by another process (see CISTERN_ETCD_PORT, CISTERN_ETCD_PEER_PORT)"
  done
  mkdir -p "$DATA" "$LOGDIR" "$RUN"
  chmod 700 "$DATA" # etcd refuses a data dir others can read
  touch "$STATE_DIR/.cistern-etcd"

  printf '==== %s etcd\n' "$(date -u +%FT%TZ)" >>"$LOGDIR/etcd.log"
  # shellcheck disable=SC2016 # $$ and $0 belong to the inner shell
  env "$MARKER" setsid bash -c 'echo $$ >"$0"; exec "$@"' "$RUN/etcd.pid" \
    etcd --name default --data-dir "$DATA" \
    --listen-client-urls "$URL" --advertise-client-urls "$URL" \
    --listen-peer-urls "$PEER_URL" --initial-advertise-peer-urls "$PEER_URL" \
    --initial-cluster "default=$PEER_URL" \
    </dev/null >>"$LOGDIR/etcd.log" 2>&1 &
  ready "$START_TIMEOUT" || fail "etcd did not answer $URL/health within ${START_TIMEOUT}s"
  print_env
  log "up in $(elapsed)s (state $STATE_DIR, log $LOGDIR/etcd.log)"
}

cmd_stop() {
  [ -d "$STATE_DIR" ] || { log "no state dir $STATE_DIR; nothing to stop"; return 0; }
  STATE_DIR=$(cd "$STATE_DIR" && pwd -P)
  set_paths
  stop_etcd "${1:-TERM}"
  log "stopped ($(elapsed)s)"
}

cmd_wipe() {
  [ -d "$STATE_DIR" ] || return 0
  [ -f "$STATE_DIR/.cistern-etcd" ] ||
    die "$STATE_DIR has no .cistern-etcd marker; not deleting it"
  cmd_stop KILL
  rm -rf -- "$STATE_DIR"
  log "wiped $STATE_DIR"
}

cmd_status() {
  [ -d "$STATE_DIR" ] || return 1
  STATE_DIR=$(cd "$STATE_DIR" && pwd -P)
  set_paths
  alive && healthy
}

case "${1:-start}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  wipe) cmd_wipe ;;
  status) cmd_status ;;
  env) print_env ;;
  *)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
