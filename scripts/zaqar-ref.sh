#!/usr/bin/env bash
# zaqar-ref.sh [start|stop|status|env]
#
# The real OpenStack Zaqar 15 (Debian's python3-zaqar / zaqar-server) on
# 127.0.0.1, as the baseline Cistern is measured against: served by uWSGI
# (Debian's uwsgi-core + uwsgi-plugin-python3; 2 preforked workers behind
# uWSGI's HTTP router, keep-alive), no authentication (an empty
# auth_strategy), management store on its own redis-server (own port, no
# persistence), message store on that redis (default) or on the local Swift
# (ZAQAR_BACKEND=swift).
#
#   out=$(scripts/zaqar-ref.sh start) && eval "$out"   # stdout: only `export ZAQAR_REF_URL=...`
#   curl -H 'Client-ID: ...' -H 'X-Project-ID: p' "$ZAQAR_REF_URL/v2/queues"
#   scripts/zaqar-ref.sh stop
#
# start   installs the Debian packages when something is missing, then starts
#         redis and Zaqar and checks that a message can be posted. A no-op
#         when this instance already answers.
# stop    stops only the processes this script started for this state dir.
# status  exit 0 when this instance answers, 1 otherwise.
# env     prints the export line without starting anything.
#
# Environment (defaults):
#   ZAQAR_PORT=8889               Zaqar's port (127.0.0.1 only; 8888 is Cistern's)
#   ZAQAR_REDIS_PORT=6389         our own redis (never a shared one)
#   ZAQAR_BACKEND=redis           message store: redis | swift
#   ZAQAR_PROCESSES=2             uWSGI worker processes, 1 thread each
#   ZAQAR_HTTP=router             router: uWSGI's HTTP router process in front
#                                 of the workers (keep-alive for any number of
#                                 clients); http11: --http11-socket, each
#                                 worker serving one keep-alive client at a time
#                                 (more clients than workers starve)
#   ZAQAR_REF_DIR=${TMPDIR:-/tmp}/cistern-zaqar-ref-$ZAQAR_PORT   state dir
#   ZAQAR_LUA_DIR=${TMPDIR:-/tmp}/zaqar-lua-15.0.0
#   ZAQAR_UPSTREAM_GIT            git dir of openstack/zaqar (see "Lua" below)
#   swift mode:
#   CISTERN_SWIFT_AUTH_URL=http://127.0.0.1:8080/auth/v1.0   tempauth (scripts/swift-aio.sh)
#   CISTERN_SWIFT_USER=test:tester  CISTERN_SWIFT_KEY=testing
#   ZAQAR_KEYSTONE_PORT=$((ZAQAR_PORT + 26500))   our Keystone stand-in
#
# Lua: Debian's python3-zaqar lacks zaqar/storage/redis/scripts/*.lua of the
# upstream 15.0.0 tag, and without them every post and claim answers 503. They
# are upstream code and are never copied into this repository: point
# ZAQAR_LUA_DIR at a folder holding claim_messages.lua and index_messages.lua
# of 15.0.0, or ZAQAR_UPSTREAM_GIT at a git dir of openstack/zaqar (e.g. a
# clone outside this repository) to extract them from; both are checked by
# git blob id. The WSGI launcher this script writes into the state dir points
# zaqar.storage.redis.scripting._read_script at that folder; /usr/lib is not
# touched.
#
# Swift mode: Zaqar's Swift driver authenticates only through Keystone
# (keystoneauth1 password auth, then the catalog's object-store endpoint).
# This script runs a small Keystone v3 stand-in that logs into the Swift's
# tempauth and hands Zaqar that token and storage URL.
set -euo pipefail

PROG=zaqar-ref
log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { printf '%s: ERROR: %s\n' "$PROG" "$*" >&2; exit 1; }

PY=/usr/bin/python3 # Debian's python; a pyenv/venv python3 lacks the modules
ZAQAR_PORT=${ZAQAR_PORT:-8889}
REDIS_PORT=${ZAQAR_REDIS_PORT:-6389}
BACKEND=${ZAQAR_BACKEND:-redis}
PROCESSES=${ZAQAR_PROCESSES:-2}
HTTP_MODE=${ZAQAR_HTTP:-router}
STATE_DIR=${ZAQAR_REF_DIR:-${TMPDIR:-/tmp}/cistern-zaqar-ref-$ZAQAR_PORT}
LUA_DIR=${ZAQAR_LUA_DIR:-${TMPDIR:-/tmp}/zaqar-lua-15.0.0}
SWIFT_AUTH_URL=${CISTERN_SWIFT_AUTH_URL:-http://127.0.0.1:8080/auth/v1.0}
SWIFT_USER=${CISTERN_SWIFT_USER:-test:tester}
SWIFT_KEY=${CISTERN_SWIFT_KEY:-testing}
KEYSTONE_PORT=${ZAQAR_KEYSTONE_PORT:-$((ZAQAR_PORT + 26500))}
URL=http://127.0.0.1:$ZAQAR_PORT

PACKAGES=(zaqar-server python3-zaqar python3-redis redis-server uwsgi-core uwsgi-plugin-python3)
# git blob ids of zaqar/storage/redis/scripts/*.lua at upstream tag 15.0.0
declare -A LUA_BLOB=(
  [claim_messages.lua]=b991686405649aab25849499d9700d451bdd69ae
  [index_messages.lua]=955383755dbdce2f93624e1923e45dc3f6616fc6
)
DEB_LUA=/usr/lib/python3/dist-packages/zaqar/storage/redis/scripts

export EVENTLET_NO_GREENDNS=yes PYTHONDONTWRITEBYTECODE=1

case $BACKEND in redis | swift) ;; *) die "ZAQAR_BACKEND=$BACKEND: want redis or swift" ;; esac
case $HTTP_MODE in router | http11) ;; *) die "ZAQAR_HTTP=$HTTP_MODE: want router or http11" ;; esac
[[ $ZAQAR_PORT =~ ^[0-9]+$ && $REDIS_PORT =~ ^[0-9]+$ && $KEYSTONE_PORT =~ ^[0-9]+$ ]] ||
  die "ports must be numbers"

set_paths() {
  ETC=$STATE_DIR/etc LOGDIR=$STATE_DIR/log RUN=$STATE_DIR/run
}

print_env() { echo "export ZAQAR_REF_URL=$URL"; }

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ------------------------------------------------------------ processes
# pid is alive, not a zombie, and runs inside this state dir: every process
# we start has its working directory there (redis in redis/, the rest at the
# top). Not an environment marker: redis and uWSGI overwrite their
# environment when they set their process titles.
ours() {
  local st cwd
  [[ ${1:-} =~ ^[0-9]+$ ]] || return 1
  { read -r st <"/proc/$1/stat"; } 2>/dev/null || return 1
  st=${st##*) } st=${st%% *}
  [[ $st != [ZX] ]] || return 1
  cwd=$(readlink "/proc/$1/cwd" 2>/dev/null) || return 1
  [[ $cwd == "$STATE_DIR" || $cwd == "$STATE_DIR"/* ]]
}

# launch NAME CMD...: in its own session (its children share its process
# group), pid file run/NAME.pid, output appended to log/NAME.log
launch() {
  local name=$1
  shift
  printf '==== %s %s\n' "$(date -u +%FT%TZ)" "$*" >>"$LOGDIR/$name.log"
  # shellcheck disable=SC2016 # $$ and $0 belong to the inner shell
  (cd "$STATE_DIR" && exec setsid bash -c 'echo $$ >"$0"; exec "$@"' "$RUN/$name.pid" "$@" \
    </dev/null >>"$LOGDIR/$name.log" 2>&1) &
}

alive() { ours "$(cat "$RUN/$1.pid" 2>/dev/null)"; }

# stop_all: TERM every recorded pid and the rest of its process group (the
# uWSGI workers), wait up to 10 s, then KILL what is left. Only processes
# running in our state dir are touched.
stop_all() {
  local f st p pgid
  local -a leaders=() targets=() left=()
  for f in "$RUN"/*.pid; do
    [ -f "$f" ] && leaders+=(" $(cat "$f") ")
  done
  [ ${#leaders[@]} -gt 0 ] || return 0
  for f in /proc/[0-9]*/stat; do # fields after "(comm) ": state ppid pgrp
    { read -r st <"$f"; } 2>/dev/null || continue
    p=${f#/proc/} p=${p%/stat}
    st=${st##*) } pgid=${st#* * } pgid=${pgid%% *}
    [[ "${leaders[*]}" == *" $p "* || "${leaders[*]}" == *" $pgid "* ]] || continue
    if ours "$p"; then targets+=("$p"); fi
  done
  if [ ${#targets[@]} -gt 0 ]; then
    log "stopping ${#targets[@]} processes"
    kill -TERM "${targets[@]}" 2>/dev/null || true
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
  rm -f "$RUN"/*.pid
}

# ------------------------------------------------------------ install
install_packages() {
  local missing=0 b
  for b in redis-server uwsgi; do command -v "$b" >/dev/null || missing=1; done
  [ -e /usr/lib/uwsgi/plugins/python3_plugin.so ] || missing=1
  [ -e /usr/bin/zaqar-server ] || missing=1
  [ -x "$PY" ] && "$PY" -c 'import zaqar, redis' 2>/dev/null || missing=1
  [ $missing -eq 1 ] || return 0

  local -a sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "Zaqar is not installed and we are not root: apt-get install ${PACKAGES[*]}"
    sudo=(sudo)
  fi
  log "installing ${PACKAGES[*]} with apt-get"
  # Don't let the packages start their services (redis-server on 6379, the
  # zaqar-server daemon): the standard policy-rc.d switch, only if the host
  # has none (Docker images ship one).
  local policy=/usr/sbin/policy-rc.d added_policy=0
  if [ ! -e $policy ]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee $policy >/dev/null
    "${sudo[@]}" chmod 755 $policy
    added_policy=1
  fi
  local -a apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive
    apt-get -y -q -o DPkg::Lock::Timeout=600)
  local rc=0
  if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
    "${apt[@]}" update >&2 || rc=$?
  fi
  if [ $rc -eq 0 ] && ! "${apt[@]}" install "${PACKAGES[@]}" >&2; then
    { "${apt[@]}" update >&2 && "${apt[@]}" install "${PACKAGES[@]}" >&2; } || rc=$?
  fi
  [ $added_policy -eq 0 ] || "${sudo[@]}" rm -f $policy
  [ $rc -eq 0 ] || die "apt-get install ${PACKAGES[*]} failed"
  "$PY" -c 'import zaqar, redis' || die "python3-zaqar / python3-redis still missing after install"
}

# ------------------------------------------------------------ Lua scripts
blob_ok() { [ -f "$1" ] && [ "$(git hash-object "$1")" = "$2" ]; }

# ensure_lua: sets LUA_PATCH_DIR to the folder the launcher reads the
# scripts from ("" when the installed package has them after all).
ensure_lua() {
  LUA_PATCH_DIR=""
  if [ -f "$DEB_LUA/claim_messages.lua" ] && [ -f "$DEB_LUA/index_messages.lua" ]; then
    return 0
  fi
  command -v git >/dev/null || die "git is needed to check the Lua scripts' blob ids"
  local top dir f want missing=()
  dir=$(realpath -m "$LUA_DIR")
  top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
  case $dir/ in
    "$top"/*) die "ZAQAR_LUA_DIR=$dir is inside this repository; Zaqar's Lua scripts are upstream code and must stay outside it" ;;
  esac
  mkdir -p "$dir"
  for f in "${!LUA_BLOB[@]}"; do
    want=${LUA_BLOB[$f]}
    if ! blob_ok "$dir/$f" "$want" && [ -n "${ZAQAR_UPSTREAM_GIT:-}" ]; then
      if git --git-dir="$ZAQAR_UPSTREAM_GIT" cat-file -p "$want" >"$dir/$f.tmp" 2>/dev/null; then
        mv "$dir/$f.tmp" "$dir/$f"
      else
        rm -f "$dir/$f.tmp"
        log "blob $want ($f) is not in $ZAQAR_UPSTREAM_GIT"
      fi
    fi
    blob_ok "$dir/$f" "$want" || missing+=("$f (git blob $want)")
  done
  [ ${#missing[@]} -eq 0 ] || die "Debian's python3-zaqar lacks the redis Lua scripts and $dir has no valid ${missing[*]}.
  Fetch openstack/zaqar outside this repository, e.g.
    git clone --bare https://opendev.org/openstack/zaqar ${TMPDIR:-/tmp}/zaqar.git
  then ZAQAR_UPSTREAM_GIT=${TMPDIR:-/tmp}/zaqar.git $0 start
  (or put claim_messages.lua and index_messages.lua of tag 15.0.0 into ZAQAR_LUA_DIR)."
  LUA_PATCH_DIR=$dir
}

# ------------------------------------------------------------ configs
write_files() {
  cat >"$ETC/redis.conf" <<EOF
# generated by scripts/zaqar-ref.sh; rewritten on every start
bind 127.0.0.1
protected-mode yes
port $REDIS_PORT
daemonize no
dir $STATE_DIR/redis
logfile ""
# throw-away benchmark state: no persistence
save ""
appendonly no
EOF

  local message_section
  if [ "$BACKEND" = redis ]; then
    message_section="[drivers:message_store:redis]
uri = redis://127.0.0.1:$REDIS_PORT"
  else
    # swift://USER:PASSWORD@/PROJECT; tempauth "account:user" = project:user
    message_section="[drivers:message_store:swift]
uri = swift://${SWIFT_USER#*:}:$SWIFT_KEY@/${SWIFT_USER%%:*}
auth_url = http://127.0.0.1:$KEYSTONE_PORT/v3
interface = public"
  fi
  cat >"$ETC/zaqar.conf" <<EOF
# generated by scripts/zaqar-ref.sh; rewritten on every start
[DEFAULT]
# empty auth_strategy = no auth (15.0.0 has no "noauth"; any value but
# keystone makes startup fail). Clients still send X-Project-ID and Client-ID.
auth_strategy =
debug = false
use_stderr = true

[drivers]
transport = wsgi
message_store = $BACKEND
management_store = redis

[drivers:transport:wsgi]
bind = 127.0.0.1
port = $ZAQAR_PORT

$message_section

[drivers:management_store:redis]
uri = redis://127.0.0.1:$REDIS_PORT

[signed_url]
secret_key = cistern-zaqar-ref-not-a-secret
EOF

  # The WSGI entry point. zaqar.transport.wsgi.app parses sys.argv at import
  # time, so set it first; point the redis driver's script reader at the Lua
  # folder when the package lacks the scripts.
  cat >"$ETC/zaqar_wsgi.py" <<'EOF'
# generated by scripts/zaqar-ref.sh: WSGI entry point for Debian's Zaqar 15
import os
import sys

_lua = os.environ.get('ZAQAR_LUA_DIR')
if _lua:
    from zaqar.storage.redis import scripting

    def _read_script(name):
        with open(os.path.join(_lua, name + '.lua')) as f:
            return f.read()

    scripting._read_script = _read_script

sys.argv = ['zaqar-wsgi', '--config-file', os.environ['ZAQAR_CONF']]
from zaqar.transport.wsgi import app  # noqa: E402


def application(environ, start_response):
    # uWSGI's HTTP router keeps a client connection open only after a
    # response with a Content-Length; Zaqar's 204s have none, so every
    # delete would cost the client its connection. Add the header.
    def start(status, headers, exc_info=None):
        if status[:3] in ('204', '304') and not any(k.lower() == 'content-length' for k, _ in headers):
            headers = list(headers) + [('Content-Length', '0')]
        return start_response(status, headers, exc_info)
    return app.application(environ, start)
EOF

  # Keystone v3 stand-in for Zaqar's Swift driver: answers keystoneauth1's
  # discovery and POST /v3/auth/tokens by logging into the Swift's tempauth,
  # returning that token and a catalog whose object-store endpoint is the
  # tempauth storage URL. Loopback only; validates nothing else.
  cat >"$ETC/keystone_standin.py" <<'EOF'
# generated by scripts/zaqar-ref.sh: Keystone v3 stand-in over Swift tempauth
import datetime, http.server, json, sys, urllib.request

PORT, TEMPAUTH = int(sys.argv[1]), sys.argv[2]


def ts(t):
    return t.strftime('%Y-%m-%dT%H:%M:%S.000000Z')


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def reply(self, code, body, headers=()):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def version(self):
        return {'id': 'v3.14', 'status': 'stable', 'updated': '2020-01-01T00:00:00Z',
                'links': [{'rel': 'self', 'href': 'http://127.0.0.1:%d/v3/' % PORT}],
                'media-types': [{'base': 'application/json',
                                 'type': 'application/vnd.openstack.identity-v3+json'}]}

    def do_GET(self):
        p = self.path.split('?')[0].rstrip('/')
        if p == '':
            return self.reply(300, {'versions': {'values': [self.version()]}})
        if p == '/v3':
            return self.reply(200, {'version': self.version()})
        self.reply(404, {'error': {'code': 404, 'title': 'Not Found', 'message': p}})

    def do_POST(self):
        if self.path.split('?')[0].rstrip('/') != '/v3/auth/tokens':
            return self.reply(404, {'error': {'code': 404, 'title': 'Not Found', 'message': self.path}})
        try:
            auth = json.loads(self.rfile.read(int(self.headers.get('Content-Length') or 0)))['auth']
            user = auth['identity']['password']['user']
            project = auth['scope']['project']['name']
            req = urllib.request.Request(TEMPAUTH, headers={
                'X-Auth-User': '%s:%s' % (project, user['name']), 'X-Auth-Key': user['password']})
            with urllib.request.urlopen(req, timeout=10) as r:
                token, storage = r.headers['X-Auth-Token'], r.headers['X-Storage-Url']
        except Exception as e:  # bad request or tempauth said no
            return self.reply(401, {'error': {'code': 401, 'title': 'Unauthorized', 'message': str(e)}})
        now = datetime.datetime.now(datetime.timezone.utc)
        dom = {'id': 'default', 'name': 'Default'}
        self.reply(201, {'token': {
            'methods': ['password'], 'is_domain': False, 'audit_ids': ['standin'],
            'user': {'id': user['name'], 'name': user['name'], 'domain': dom},
            'project': {'id': project, 'name': project, 'domain': dom},
            'roles': [{'id': 'admin', 'name': 'admin'}],
            'issued_at': ts(now), 'expires_at': ts(now + datetime.timedelta(hours=12)),
            'catalog': [{'id': 'swift', 'type': 'object-store', 'name': 'swift', 'endpoints': [
                {'id': i, 'interface': i, 'region': 'RegionOne', 'region_id': 'RegionOne', 'url': storage}
                for i in ('public', 'internal', 'admin')]}]}}, [('X-Subject-Token', token)])

    def log_message(self, fmt, *args):
        sys.stderr.write('%s %s\n' % (self.log_date_time_string(), fmt % args))


srv = http.server.ThreadingHTTPServer(('127.0.0.1', PORT), H)
srv.daemon_threads = True
srv.serve_forever()
EOF
}

# ------------------------------------------------------------ readiness
wait_http() { # wait_http URL EXPECTED_CODE SECONDS
  local i code
  for ((i = 0; i < $3 * 10; i++)); do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1" 2>/dev/null) || true
    [ "$code" = "$2" ] && return 0
    sleep 0.1
  done
  return 1
}

# smoke: create a queue, post a message, claim it, delete the queue (catches
# the missing-Lua 503 and a broken Swift login before any benchmark runs)
smoke() {
  local h=(-H "Client-ID: 3f1c2b9e-7a4d-4c1e-9a55-0c6d2e8b1f00" -H "X-Project-ID: zaqar-ref-smoke"
    -H "Content-Type: application/json") q=$URL/v2/queues/smoke-$$ code
  curl -fsS -o /dev/null --max-time 30 -X PUT "${h[@]}" "$q" || return 1
  code=$(curl -sS -o "$LOGDIR/smoke.out" -w '%{http_code}' --max-time 30 -X POST "${h[@]}" \
    -d '{"messages":[{"ttl":300,"body":{"smoke":1}}]}' "$q/messages") || return 1
  [ "$code" = 201 ] || { log "smoke post answered $code: $(cat "$LOGDIR/smoke.out")"; return 1; }
  code=$(curl -sS -o "$LOGDIR/smoke.out" -w '%{http_code}' --max-time 30 -X POST "${h[@]}" \
    -d '{"ttl":60,"grace":60}' "$q/claims?limit=1") || return 1
  [ "$code" = 201 ] || { log "smoke claim answered $code: $(cat "$LOGDIR/smoke.out")"; return 1; }
  curl -fsS -o /dev/null --max-time 30 -X DELETE "${h[@]}" "$q" || return 1
}

# ------------------------------------------------------------ commands
cmd_start() {
  mkdir -p "$STATE_DIR"
  STATE_DIR=$(cd "$STATE_DIR" && pwd -P)
  set_paths
  local settings="backend=$BACKEND port=$ZAQAR_PORT redis=$REDIS_PORT procs=$PROCESSES http=$HTTP_MODE keystone=$KEYSTONE_PORT swift=$SWIFT_AUTH_URL"
  if [ -f "$RUN/settings" ] && [ "$(cat "$RUN/settings")" = "$settings" ] &&
    alive redis && alive zaqar && wait_http "$URL/" 300 2; then
    print_env
    log "already running ($settings; state $STATE_DIR)"
    return 0
  fi
  if [ -d "$RUN" ]; then stop_all; fi

  install_packages
  ensure_lua

  local p ports=("$ZAQAR_PORT" "$REDIS_PORT")
  [ "$BACKEND" = swift ] && ports+=("$KEYSTONE_PORT")
  for p in "${ports[@]}"; do
    ! port_busy "$p" || die "127.0.0.1:$p is already in use by another process (see ZAQAR_PORT, ZAQAR_REDIS_PORT, ZAQAR_KEYSTONE_PORT)"
  done
  if [ "$BACKEND" = swift ]; then
    curl -fsS -o /dev/null --max-time 10 -H "X-Auth-User: $SWIFT_USER" -H "X-Auth-Key: $SWIFT_KEY" "$SWIFT_AUTH_URL" ||
      die "Swift tempauth at $SWIFT_AUTH_URL did not accept $SWIFT_USER (is the Swift running? out=\$(scripts/swift-aio.sh start) && eval \"\$out\")"
  fi

  mkdir -p "$ETC" "$LOGDIR" "$RUN" "$STATE_DIR/redis"
  write_files
  echo "$settings" >"$RUN/settings"

  launch redis redis-server "$ETC/redis.conf"
  local i
  for ((i = 0; i < 100; i++)); do port_busy "$REDIS_PORT" && break; sleep 0.1; done
  port_busy "$REDIS_PORT" || { tail -n 20 "$LOGDIR/redis.log" >&2; stop_all; die "redis did not start"; }

  if [ "$BACKEND" = swift ]; then
    launch keystone "$PY" "$ETC/keystone_standin.py" "$KEYSTONE_PORT" "$SWIFT_AUTH_URL"
    wait_http "http://127.0.0.1:$KEYSTONE_PORT/v3" 200 10 ||
      { tail -n 20 "$LOGDIR/keystone.log" >&2; stop_all; die "Keystone stand-in did not start"; }
  fi

  # uWSGI refuses a listen backlog above net.core.somaxconn
  local backlog=1024 max
  max=$(cat /proc/sys/net/core/somaxconn 2>/dev/null || echo 128)
  ((backlog <= max)) || backlog=$max
  local lua_env=()
  [ -z "$LUA_PATCH_DIR" ] || lua_env=(--env "ZAQAR_LUA_DIR=$LUA_PATCH_DIR")
  local http=()
  case $HTTP_MODE in
    # uWSGI's async HTTP router holds the client connections (keep-alive)
    # and hands each request to a free worker
    router) http=(--plugins "http,python3" --http "127.0.0.1:$ZAQAR_PORT" --http-keepalive=1) ;;
    # each worker speaks HTTP itself and sticks to one keep-alive client
    # until it goes quiet: with more clients than workers, the others wait
    http11) http=(--plugin python3 --http11-socket "127.0.0.1:$ZAQAR_PORT") ;;
  esac
  launch zaqar uwsgi "${http[@]}" --master --processes "$PROCESSES" --threads 1 \
    --lazy-apps --need-app --die-on-term \
    --listen "$backlog" --buffer-size 65535 --disable-logging \
    --wsgi-file "$ETC/zaqar_wsgi.py" --callable application --chdir "$STATE_DIR" \
    --env "ZAQAR_CONF=$ETC/zaqar.conf" --env EVENTLET_NO_GREENDNS=yes "${lua_env[@]}" \
    --procname-prefix-spaced "zaqar-ref:$ZAQAR_PORT"
  if ! wait_http "$URL/" 300 60 || ! smoke; then
    tail -n 30 "$LOGDIR/zaqar.log" >&2
    stop_all
    die "Zaqar ($BACKEND) did not come up on $URL (logs in $LOGDIR)"
  fi
  print_env
  log "Zaqar $(dpkg-query -W -f '${Version}' python3-zaqar 2>/dev/null) on $URL: uWSGI $PROCESSES workers ($HTTP_MODE), message store $BACKEND, redis :$REDIS_PORT (state $STATE_DIR)"
}

cmd_stop() {
  [ -d "$STATE_DIR" ] || { log "no state dir $STATE_DIR; nothing to stop"; return 0; }
  STATE_DIR=$(cd "$STATE_DIR" && pwd -P)
  set_paths
  [ -d "$RUN" ] || return 0
  stop_all
  log "stopped (state $STATE_DIR)"
}

cmd_status() {
  [ -d "$STATE_DIR" ] || return 1
  STATE_DIR=$(cd "$STATE_DIR" && pwd -P)
  set_paths
  alive redis && alive zaqar && wait_http "$URL/" 300 2
}

case "${1:-start}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) print_env ;;
  *)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
