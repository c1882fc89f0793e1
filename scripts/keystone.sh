#!/usr/bin/env bash
# keystone.sh [start|stop|wipe|status|env]
#
# A real OpenStack Keystone (Debian's `keystone` package, identity API v3) on
# 127.0.0.1 for tests and CI: uWSGI serving keystone-wsgi-public, a SQLite
# database and fernet tokens. Everything (config, database, keys, logs, pid
# file) lives in one state dir; nothing in /etc/keystone is used.
#
#   out=$(scripts/keystone.sh start) && eval "$out"   # stdout: only `export NAME=value`
#   go test ./server/
#   scripts/keystone.sh stop               # stop, keep the data
#   scripts/keystone.sh wipe               # stop and delete the state dir
#
# The fixture, bootstrapped once per state dir (all in domain Default, every
# password $CISTERN_KEYSTONE_PASSWORD):
#   admin    role admin  on project admin
#   cistern  role service on project service (the service user Cistern
#            validates tokens as)
#   alice    role member on project alpha     (the OS_* lines are alice's)
#   bob      role member on project beta
#   catalog  service `cistern`, type messaging, public endpoint
#            $CISTERN_KEYSTONE_ENDPOINT in region RegionOne
#
# start   installs the Debian packages if missing, then initialises the state
#         dir (first time, or when a setting above changed: then it starts
#         from scratch) and starts uWSGI. Already running and healthy: a fast
#         no-op. Exits non-zero, with the logs' tails, when anything fails.
# stop    stops only the uWSGI this script started for this state dir.
# wipe    stops it and deletes the state dir.
# status  exit 0 when Keystone answers and issues the service user a token.
# env     prints the export lines without starting anything.
#
# Environment (defaults):
#   CISTERN_KEYSTONE_DIR=${TMPDIR:-/tmp}/cistern-keystone   state dir
#   CISTERN_KEYSTONE_PORT=18535
#   CISTERN_KEYSTONE_PASSWORD=secret
#   CISTERN_KEYSTONE_ENDPOINT=http://127.0.0.1:8888   Cistern in the catalog
#   CISTERN_KEYSTONE_START_TIMEOUT=120                seconds to wait for uWSGI
set -euo pipefail

PROG=keystone
log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { printf '%s: ERROR: %s\n' "$PROG" "$*" >&2; exit 1; }
now_ms() { local t=${EPOCHREALTIME/[.,]/}; echo $((t / 1000)); }
T0=$(now_ms)
elapsed() { local ms=$(($(now_ms) - T0)); printf '%d.%02d' $((ms / 1000)) $((ms % 1000 / 10)); }

STATE_DIR=${CISTERN_KEYSTONE_DIR:-${TMPDIR:-/tmp}/cistern-keystone}
PORT=${CISTERN_KEYSTONE_PORT:-18535}
PASSWORD=${CISTERN_KEYSTONE_PASSWORD:-secret}
ENDPOINT=${CISTERN_KEYSTONE_ENDPOINT:-http://127.0.0.1:8888}
START_TIMEOUT=${CISTERN_KEYSTONE_START_TIMEOUT:-120}
REGION=RegionOne
KS=http://127.0.0.1:$PORT/v3

# The keystone scripts run under Debian's /usr/bin/python3; a pyenv/venv
# python3 earlier on PATH would not have the keystone modules.
PY=/usr/bin/python3
PACKAGES=(keystone python3-openstackclient uwsgi-core uwsgi-plugin-python3 sqlite3 curl jq)
BINARIES=(keystone-manage keystone-wsgi-public uwsgi sqlite3 curl jq)

set_paths() {
  ETC=$STATE_DIR/etc LOGDIR=$STATE_DIR/log RUN=$STATE_DIR/run
  # uWSGI and its workers carry this in their environment; stop only
  # signals processes that do (guards against reused pids).
  MARKER="CISTERN_KEYSTONE_STATE=$STATE_DIR"
}

print_env() {
  cat <<EOF
export OS_AUTH_URL=$KS
export OS_IDENTITY_API_VERSION=3
export OS_AUTH_TYPE=password
export OS_USERNAME=alice
export OS_PASSWORD=$PASSWORD
export OS_PROJECT_NAME=alpha
export OS_USER_DOMAIN_NAME=Default
export OS_PROJECT_DOMAIN_NAME=Default
export OS_REGION_NAME=$REGION
export OS_INTERFACE=public
export CISTERN_AUTH_STRATEGY=keystone
export CISTERN_KEYSTONE_URL=$KS
export CISTERN_KEYSTONE_USER=cistern
export CISTERN_KEYSTONE_PASSWORD=$PASSWORD
export CISTERN_KEYSTONE_PROJECT=service
export CISTERN_KEYSTONE_USER_DOMAIN=Default
export CISTERN_KEYSTONE_PROJECT_DOMAIN=Default
export CISTERN_KEYSTONE_ENDPOINT=$ENDPOINT
EOF
}

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

alive() { ours "$(cat "$RUN/uwsgi.pid" 2>/dev/null)"; }

# stop_uwsgi [SIGNAL]: TERM (or KILL) the uWSGI master and every process of
# its group (its workers), wait up to 10 s, then KILL what is left. Only
# processes with our marker are touched.
stop_uwsgi() {
  local sig=${1:-TERM} leader f st p pgid
  local -a targets=() left=()
  leader=$(cat "$RUN/uwsgi.pid" 2>/dev/null) || return 0
  for f in /proc/[0-9]*/stat; do # fields after "(comm) ": state ppid pgrp
    { read -r st <"$f"; } 2>/dev/null || continue
    p=${f#/proc/} p=${p%/stat}
    st=${st##*) } pgid=${st#* * } pgid=${pgid%% *}
    [[ $p == "$leader" || $pgid == "$leader" ]] || continue
    if ours "$p"; then targets+=("$p"); fi
  done
  if [ ${#targets[@]} -gt 0 ]; then
    log "stopping ${#targets[@]} processes (SIG$sig)"
    kill -"$sig" "${targets[@]}" 2>/dev/null || true
    for _ in $(seq 100); do
      left=()
      for p in "${targets[@]}"; do if ours "$p"; then left+=("$p"); fi; done
      [ ${#left[@]} -gt 0 ] || break
      sleep 0.1
    done
    if [ ${#left[@]} -gt 0 ]; then
      log "KILL ${left[*]}"
      kill -KILL "${left[@]}" 2>/dev/null || true
    fi
  fi
  rm -f "$RUN/uwsgi.pid"
}

# ------------------------------------------------------------ install
install_packages() {
  local b missing=0
  for b in "${BINARIES[@]}"; do command -v "$b" >/dev/null || missing=1; done
  [ -e /usr/lib/uwsgi/plugins/python3_plugin.so ] || missing=1
  "$PY" -c 'import keystone' 2>/dev/null || missing=1
  [ $missing -eq 1 ] || return 0

  local -a sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "Keystone is not installed and we are not root: apt-get install ${PACKAGES[*]}"
    sudo=(sudo)
  fi
  log "installing ${PACKAGES[*]} with apt-get"
  # Don't let the package start its own Keystone (port 5000): the standard
  # policy-rc.d switch, only if the host has none (Docker images ship one).
  local policy=/usr/sbin/policy-rc.d added_policy=0
  if [ ! -e $policy ]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee $policy >/dev/null
    "${sudo[@]}" chmod 755 $policy
    added_policy=1
  fi
  # No database, admin tenant or endpoint set up by the package: the state
  # dir has its own.
  "${sudo[@]}" debconf-set-selections <<'EOF'
keystone keystone/configure_db boolean false
keystone keystone/create-admin-tenant boolean false
keystone keystone/register-endpoint boolean false
EOF
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
  "$PY" -c 'import keystone' || die "keystone does not import with $PY after install"
}

# ------------------------------------------------------------ configs
write_configs() {
  cat >"$ETC/keystone.conf" <<EOF
# generated by scripts/keystone.sh; rewritten on every start
[DEFAULT]
log_dir = $LOGDIR
log_file = keystone.log
[database]
connection = sqlite:///$STATE_DIR/keystone.db
[token]
provider = fernet
expiration = 3600
[fernet_tokens]
key_repository = $STATE_DIR/fernet-keys
[fernet_receipts]
key_repository = $STATE_DIR/fernet-receipts
[credential]
key_repository = $STATE_DIR/credential-keys
# cuts a validation from ~130 ms to ~22 ms; revocations are still honoured
[cache]
enabled = true
backend = dogpile.cache.memory
# The memory cache is per uWSGI worker: a cached catalog would hide an
# endpoint created through the other worker from new tokens for minutes.
[catalog]
caching = false
EOF
  # Connection: close, because uWSGI's http-socket closes reused
  # connections without saying so (clients then fail with ECONNRESET).
  cat >"$ETC/uwsgi.ini" <<EOF
# generated by scripts/keystone.sh; rewritten on every start
[uwsgi]
plugins = python3
http-socket = 127.0.0.1:$PORT
add-header = Connection: close
wsgi-file = /usr/bin/keystone-wsgi-public
env = OS_KEYSTONE_CONFIG_FILES=$ETC/keystone.conf
chdir = $STATE_DIR
master = true
processes = 2
threads = 1
lazy-apps = false
need-app = true
die-on-term = true
buffer-size = 65535
EOF
}

# initialise: a fresh database, keys and the bootstrap admin. Keystone must
# not be running (SQLite writers would collide).
initialise() {
  log "initialising $STATE_DIR (database, fernet keys, bootstrap)"
  rm -rf "$STATE_DIR/keystone.db" "$STATE_DIR/keystone.db-wal" "$STATE_DIR/keystone.db-shm" \
    "$STATE_DIR/fernet-keys" "$STATE_DIR/fernet-receipts" "$STATE_DIR/credential-keys" "$RUN/fixture"
  local -a km=(keystone-manage --config-file "$ETC/keystone.conf")
  {
    "${km[@]}" db_sync &&
      "${km[@]}" fernet_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)" &&
      "${km[@]}" credential_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)" &&
      "${km[@]}" bootstrap --bootstrap-password "$PASSWORD" --bootstrap-region-id "$REGION" \
        --bootstrap-admin-url "$KS" --bootstrap-public-url "$KS" --bootstrap-internal-url "$KS"
  } >>"$LOGDIR/keystone-manage.log" 2>&1 || return 1
  # Without WAL a token issue's lingering read lock makes the next write
  # fail with "database is locked" (HTTP 500) after 5 s.
  sqlite3 "$STATE_DIR/keystone.db" 'PRAGMA journal_mode=WAL;' >/dev/null
}

# token USER PROJECT: a project-scoped token for USER, on stdout
token() {
  local body
  body=$(jq -nc --arg u "$1" --arg p "$2" --arg pw "$PASSWORD" \
    '{auth:{identity:{methods:["password"],password:{user:{name:$u,domain:{name:"Default"},password:$pw}}},
      scope:{project:{name:$p,domain:{name:"Default"}}}}}')
  curl -sf -o /dev/null -D - -H 'Content-Type: application/json' -d "$body" "$KS/auth/tokens" |
    awk -F': ' 'tolower($1)=="x-subject-token"{print $2}' | tr -d '\r'
}

# provision: the users, projects, roles and catalog entry of the fixture,
# through the API as admin (seconds, where the openstack CLI takes a minute).
provision() {
  log "provisioning the fixture"
  local admin
  admin=$(token admin admin)
  [ -n "$admin" ] || return 1
  local -a h=(-sf -H "X-Auth-Token: $admin" -H 'Content-Type: application/json')
  post() { curl "${h[@]}" -d "$2" "$KS/$1" | jq -er '.[keys[0]].id'; }
  local role_svc role_mem pur p u r pid uid sid
  role_svc=$(post roles '{"role":{"name":"service"}}') || return 1
  role_mem=$(curl "${h[@]}" "$KS/roles?name=member" | jq -er '.roles[0].id') || return 1
  for pur in service:cistern:$role_svc alpha:alice:$role_mem beta:bob:$role_mem; do
    IFS=: read -r p u r <<<"$pur"
    pid=$(post projects "$(jq -nc --arg p "$p" '{project:{name:$p,domain_id:"default"}}')") || return 1
    uid=$(post users "$(jq -nc --arg u "$u" --arg p "$pid" --arg pw "$PASSWORD" \
      '{user:{name:$u,domain_id:"default",default_project_id:$p,password:$pw}}')") || return 1
    curl "${h[@]}" -X PUT "$KS/projects/$pid/users/$uid/roles/$r" || return 1
  done
  sid=$(post services '{"service":{"name":"cistern","type":"messaging"}}') || return 1
  post endpoints "$(jq -nc --arg s "$sid" --arg r "$REGION" --arg u "$ENDPOINT" \
    '{endpoint:{service_id:$s,interface:"public",region_id:$r,url:$u}}')" >/dev/null || return 1
}

# ------------------------------------------------------------ readiness
# ready TIMEOUT: GET /v3 answers 200, retried until TIMEOUT seconds passed
ready() {
  local deadline=$(($(now_ms) + $1 * 1000))
  while :; do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$KS")" = 200 ] && return 0
    [ "$(now_ms)" -lt $deadline ] || return 1
    alive || return 1
    sleep 0.2
  done
}

# healthy: the service user gets a token (database, keys and fixture work)
healthy() { [ -n "$(token cistern service 2>/dev/null)" ]; }

# ------------------------------------------------------------ commands
settings() { echo "port=$PORT endpoint=$ENDPOINT password=$(printf %s "$PASSWORD" | sha256sum | cut -c1-16)"; }

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

fail() {
  local f
  for f in "$LOGDIR"/*.log; do
    [ -f "$f" ] || continue
    printf -- '---- %s\n' "$f" >&2
    tail -n 15 "$f" >&2
  done
  stop_uwsgi
  die "$1 (logs in $LOGDIR)"
}

cmd_start() {
  mkdir -p "$STATE_DIR"
  STATE_DIR=$(cd "$STATE_DIR" && pwd -P)
  set_paths

  # Fast path: our uWSGI is alive, the fixture matches the settings and the
  # service user gets a token.
  if [ "$(cat "$RUN/fixture" 2>/dev/null)" = "$(settings)" ] && alive && healthy; then
    print_env
    log "already running ($(elapsed)s; state $STATE_DIR)"
    return 0
  fi
  if [ -d "$RUN" ]; then stop_uwsgi; fi

  install_packages
  ! port_busy "$PORT" || die "127.0.0.1:$PORT is already in use by another process (see CISTERN_KEYSTONE_PORT)"
  mkdir -p "$ETC" "$LOGDIR" "$RUN"
  touch "$STATE_DIR/.cistern-keystone"
  write_configs
  local fresh=0
  if [ "$(cat "$RUN/fixture" 2>/dev/null)" != "$(settings)" ]; then
    initialise || fail "keystone-manage failed"
    fresh=1
  fi

  printf '==== %s uwsgi\n' "$(date -u +%FT%TZ)" >>"$LOGDIR/uwsgi.log"
  # own session, so its workers share its process group
  # shellcheck disable=SC2016 # $$ and $0 belong to the inner shell
  env "$MARKER" setsid bash -c 'echo $$ >"$0"; exec "$@"' "$RUN/uwsgi.pid" \
    uwsgi --ini "$ETC/uwsgi.ini" </dev/null >>"$LOGDIR/uwsgi.log" 2>&1 &
  ready "$START_TIMEOUT" || fail "Keystone did not answer on $KS"
  if [ $fresh -eq 1 ]; then
    provision || fail "provisioning the fixture failed"
    settings >"$RUN/fixture"
  fi
  healthy || fail "the service user cistern gets no token"
  print_env
  log "up in $(elapsed)s (state $STATE_DIR, logs $LOGDIR)"
}

cmd_stop() {
  [ -d "$STATE_DIR" ] || { log "no state dir $STATE_DIR; nothing to stop"; return 0; }
  STATE_DIR=$(cd "$STATE_DIR" && pwd -P)
  set_paths
  stop_uwsgi "${1:-TERM}"
  log "stopped ($(elapsed)s)"
}

cmd_wipe() {
  [ -d "$STATE_DIR" ] || return 0
  [ -f "$STATE_DIR/.cistern-keystone" ] ||
    die "$STATE_DIR has no .cistern-keystone marker; not deleting it"
  cmd_stop KILL
  rm -rf -- "$STATE_DIR"
  log "wiped $STATE_DIR"
}

cmd_status() {
  [ -d "$STATE_DIR" ] || return 1
  STATE_DIR=$(cd "$STATE_DIR" && pwd -P)
  set_paths
  [ "$(cat "$RUN/fixture" 2>/dev/null)" = "$(settings)" ] && alive && healthy
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
