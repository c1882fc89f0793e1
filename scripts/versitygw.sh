#!/usr/bin/env bash
# versitygw.sh [start|stop|wipe|status|env]
#
# A Versity S3 gateway (versitygw, posix backend) on 127.0.0.1 for tests and
# CI. Unlike Swift's s3api it enforces conditional writes: a PutObject with
# `If-None-Match: *` on an existing key answers 412 PreconditionFailed, so
# the S3 driver's create-only puts can be tested for real.
#
#   out=$(scripts/versitygw.sh start) && eval "$out"   # stdout: only `export NAME=value`
#   scripts/versitygw.sh stop               # stop, keep the data
#   scripts/versitygw.sh wipe               # stop and delete the state dir
#
# No bucket is pre-created: clients create their own (CreateBucket; path-style
# addressing, region us-east-1). Buckets are directories under STATE_DIR/data.
#
# start   builds versitygw into the tools cache if it is missing (needs Go;
#         `go install`, a few minutes the first time), then starts it. A
#         second start while it is healthy is a fast no-op.
# stop    stops only the process this script started for this state dir.
# status  exit 0 when it answers a signed ListBuckets.
# env     prints the export lines without starting anything.
#
# Environment (defaults):
#   CISTERN_VGW_DIR=${TMPDIR:-/tmp}/cistern-vgw    state dir (needs user xattrs)
#   CISTERN_VGW_PORT=7070
#   CISTERN_TOOLS_DIR=$HOME/.cache/cistern-tools   binary in $CISTERN_TOOLS_DIR/bin
#   CISTERN_VGW_START_TIMEOUT=30
set -euo pipefail

PROG=versitygw.sh
log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { printf '%s: ERROR: %s\n' "$PROG" "$*" >&2; exit 1; }
now_ms() { local t=${EPOCHREALTIME/[.,]/}; echo $((t / 1000)); }
T0=$(now_ms)
elapsed() { local ms=$(($(now_ms) - T0)); printf '%d.%02d' $((ms / 1000)) $((ms % 1000 / 10)); }

VERSION=v1.8.0
TOOLS_BIN=${CISTERN_TOOLS_DIR:-$HOME/.cache/cistern-tools}/bin
VGW=$TOOLS_BIN/versitygw
STATE_DIR=${CISTERN_VGW_DIR:-${TMPDIR:-/tmp}/cistern-vgw}
PORT=${CISTERN_VGW_PORT:-7070}
START_TIMEOUT=${CISTERN_VGW_START_TIMEOUT:-30}
ACCESS_KEY=cistern
SECRET_KEY=cistern-secret
REGION=us-east-1
EMPTY_SHA256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855

set_paths() {
  PIDFILE=$STATE_DIR/versitygw.pid
  LOGFILE=$STATE_DIR/versitygw.log
  # The process we start carries this in its environment; stop only signals
  # a pid that does (guards against pid reuse).
  MARKER="CISTERN_VGW_STATE=$STATE_DIR"
}

print_env() {
  cat <<EOF
export CISTERN_VGW_ENDPOINT=http://127.0.0.1:$PORT
export CISTERN_VGW_ACCESS_KEY=$ACCESS_KEY
export CISTERN_VGW_SECRET_KEY=$SECRET_KEY
export CISTERN_VGW_REGION=$REGION
EOF
}

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
running_pid() { # prints the recorded pid if it is ours and alive
  local pid
  pid=$(cat "$PIDFILE" 2>/dev/null) || return 1
  ours "$pid" && echo "$pid"
}

# answers TIMEOUT: a SigV4-signed ListBuckets returns 200 (curl), or, without
# curl, the port answers HTTP at all. Retried until TIMEOUT seconds passed.
answers() {
  local deadline=$(($(now_ms) + $1 * 1000)) code status
  while :; do
    if command -v curl >/dev/null; then
      code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 \
        --aws-sigv4 "aws:amz:$REGION:s3" --user "$ACCESS_KEY:$SECRET_KEY" \
        -H "x-amz-content-sha256: $EMPTY_SHA256" \
        "http://127.0.0.1:$PORT/" 2>/dev/null) || code=000
      [ "$code" = 200 ] && return 0
    elif status=$( (exec 3<>"/dev/tcp/127.0.0.1/$PORT" &&
      printf 'GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3 &&
      IFS= read -r -t 5 line <&3 && echo "$line") 2>/dev/null) &&
      [[ $status == HTTP/* ]]; then
      return 0
    fi
    [ "$(now_ms)" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

ensure_binary() {
  # a binary built by `go install` records its module version
  if [ -x "$VGW" ]; then
    if ! command -v go >/dev/null ||
      go version -m "$VGW" 2>/dev/null | grep -Eq "^[[:space:]]+mod[[:space:]]+github.com/versity/versitygw[[:space:]]+${VERSION}[[:space:]]"; then
      return 0
    fi
    log "$VGW is not versitygw $VERSION; rebuilding"
  fi
  command -v go >/dev/null || die "versitygw is not in $TOOLS_BIN and Go is not installed to build it"
  log "building versitygw $VERSION into $TOOLS_BIN (go install; takes a few minutes the first time)"
  mkdir -p "$TOOLS_BIN"
  (cd / && GOWORK=off GOFLAGS='' GOBIN=$TOOLS_BIN \
    go install "github.com/versity/versitygw/cmd/versitygw@$VERSION") >&2 ||
    die "go install github.com/versity/versitygw/cmd/versitygw@$VERSION failed"
}

stop_process() { # stop_process SIGNAL
  local pid
  if pid=$(running_pid); then
    log "stopping pid $pid (SIG$1)"
    kill -"$1" "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
      ours "$pid" || break
      sleep 0.1
    done
    if ours "$pid"; then
      log "KILL $pid"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$PIDFILE" "$STATE_DIR/settings"
}

cmd_start() {
  mkdir -p "$STATE_DIR"
  STATE_DIR=$(cd "$STATE_DIR" && pwd -P)
  set_paths
  if running_pid >/dev/null && [ "$(cat "$STATE_DIR/settings" 2>/dev/null)" = "$PORT" ] &&
    answers 3; then
    print_env
    log "already running ($(elapsed)s; state $STATE_DIR)"
    return 0
  fi
  stop_process TERM

  ensure_binary
  ! port_busy "$PORT" || die "127.0.0.1:$PORT is already in use by another process (set CISTERN_VGW_PORT)"
  mkdir -p "$STATE_DIR/data"
  touch "$STATE_DIR/.cistern-vgw"

  printf '==== %s versitygw %s on 127.0.0.1:%s\n' "$(date -u +%FT%TZ)" "$VERSION" "$PORT" >>"$LOGFILE"
  # shellcheck disable=SC2016 # $$ and $0 belong to the inner shell
  env "$MARKER" setsid bash -c 'echo $$ >"$0"; exec "$@"' "$PIDFILE" \
    "$VGW" --port "127.0.0.1:$PORT" --access "$ACCESS_KEY" --secret "$SECRET_KEY" \
    --region "$REGION" --quiet posix "$STATE_DIR/data" \
    </dev/null >>"$LOGFILE" 2>&1 &
  echo "$PORT" >"$STATE_DIR/settings"

  if ! answers "$START_TIMEOUT" || ! running_pid >/dev/null; then
    tail -n 20 "$LOGFILE" >&2
    stop_process TERM
    die "versitygw did not come up (log $LOGFILE; its posix backend needs user xattrs on $STATE_DIR)"
  fi
  print_env
  log "up in $(elapsed)s (state $STATE_DIR, log $LOGFILE)"
}

cmd_stop() {
  [ -d "$STATE_DIR" ] || { log "no state dir $STATE_DIR; nothing to stop"; return 0; }
  STATE_DIR=$(cd "$STATE_DIR" && pwd -P)
  set_paths
  stop_process "${1:-TERM}"
  log "stopped ($(elapsed)s)"
}

cmd_wipe() {
  [ -d "$STATE_DIR" ] || return 0
  [ -f "$STATE_DIR/.cistern-vgw" ] || die "$STATE_DIR has no .cistern-vgw marker; not deleting it"
  cmd_stop KILL
  rm -rf -- "$STATE_DIR"
  log "wiped $STATE_DIR"
}

cmd_status() {
  [ -d "$STATE_DIR" ] || return 1
  STATE_DIR=$(cd "$STATE_DIR" && pwd -P)
  set_paths
  running_pid >/dev/null || return 1
  PORT=$(cat "$STATE_DIR/settings" 2>/dev/null) || return 1
  answers 3
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
