#!/usr/bin/env bash
# swift-aio.sh [start|stop|wipe|status|env]
#
# A real single-node OpenStack Swift ("Swift All In One") on 127.0.0.1 for
# tests and CI: the Swift API with tempauth and the S3 API (s3api middleware)
# on one proxy port, plus memcached, the object-expirer and the object- and
# container-updaters. Everything (configs, rings, data, logs, pid files)
# lives in one state dir.
#
#   out=$(scripts/swift-aio.sh start) && eval "$out"   # stdout: only `export NAME=value`;
#                                      # a failed start exits non-zero: never eval "$(... start)", which hides it
#   go test ./...
#   scripts/swift-aio.sh stop               # stop, keep the data
#   scripts/swift-aio.sh wipe               # stop and delete the state dir
#
# start   installs the Debian packages if a binary is missing, then starts the
#         stack. If it is already running and healthy this is a fast no-op; a
#         partly dead instance is stopped and started again (data kept).
# stop    stops only the processes this script started for this state dir.
# wipe    kills them and deletes the state dir.
# status  exit 0 when the stack answers (tempauth + S3 SigV4), 1 otherwise.
# env     prints the export lines without starting anything.
# keystone-start   (Swift already started) a second proxy, on
#         $CISTERN_SWIFT_KEYSTONE_PORT, over the same storage servers,
#         authenticating with the Keystone of scripts/keystone.sh (its
#         CISTERN_KEYSTONE_* variables must be set) instead of tempauth; prints
#         the CISTERN_SWIFT_KEYSTONE_* lines (Keystone user alice, project
#         alpha). See "keystone proxy" below.
# keystone-stop    stops that proxy only (`stop` stops it too).
# keystone-status  exit 0 when it answers alice's token.
#
# Environment (defaults):
#   CISTERN_SWIFT_DIR=${TMPDIR:-/tmp}/cistern-swift   state dir (needs user xattrs)
#   CISTERN_SWIFT_PORT=8080            proxy: Swift API + S3 API
#   CISTERN_SWIFT_OBJECT_PORT=6210     CISTERN_SWIFT_CONTAINER_PORT=6211
#   CISTERN_SWIFT_ACCOUNT_PORT=6212    CISTERN_SWIFT_MEMCACHED_PORT=11212
#       (memcached is always our own: a shared one would mix the token and
#       account/container caches of different clusters)
#   CISTERN_SWIFT_LOG_LEVEL=WARNING    INFO logs one proxy line per request
#   CISTERN_SWIFT_CONTAINER_UPDATER_INTERVAL=5   see "expiry" below
#   CISTERN_SWIFT_OBJECT_UPDATER_INTERVAL=15
#   CISTERN_SWIFT_EXPIRER_INTERVAL=2
#   CISTERN_SWIFT_START_TIMEOUT=90     seconds to wait for readiness
#   CISTERN_SWIFT_KEYSTONE_PORT=8081   the keystone proxy
#
# Expiry: an X-Delete-At object returns 404 from its deadline on, and leaves
# container listings about container-updater interval + expirer interval
# later (the expirer only sees new .expiring_objects task containers once the
# container-updater has registered them in the account).
#
# S3 notes (Swift 2.30 s3api): path-style only, SigV4 region must be
# us-east-1, conditional PUTs (If-None-Match) answer 501 NotImplemented
# (use scripts/versitygw.sh for create-only S3 tests), DeleteObjects needs
# Content-MD5. The Swift API does honour `If-None-Match: *` (412), though not
# atomically under concurrency.
set -euo pipefail

PROG=swift-aio
log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { printf '%s: ERROR: %s\n' "$PROG" "$*" >&2; exit 1; }
now_ms() { local t=${EPOCHREALTIME/[.,]/}; echo $((t / 1000)); }
T0=$(now_ms)
elapsed() { local ms=$(($(now_ms) - T0)); printf '%d.%02d' $((ms / 1000)) $((ms % 1000 / 10)); }

STATE_DIR=${CISTERN_SWIFT_DIR:-${TMPDIR:-/tmp}/cistern-swift}
PROXY_PORT=${CISTERN_SWIFT_PORT:-8080}
OBJECT_PORT=${CISTERN_SWIFT_OBJECT_PORT:-6210}
CONTAINER_PORT=${CISTERN_SWIFT_CONTAINER_PORT:-6211}
ACCOUNT_PORT=${CISTERN_SWIFT_ACCOUNT_PORT:-6212}
MEMCACHED_PORT=${CISTERN_SWIFT_MEMCACHED_PORT:-11212}
LOG_LEVEL=${CISTERN_SWIFT_LOG_LEVEL:-WARNING}
CONTAINER_UPDATER_INTERVAL=${CISTERN_SWIFT_CONTAINER_UPDATER_INTERVAL:-5}
OBJECT_UPDATER_INTERVAL=${CISTERN_SWIFT_OBJECT_UPDATER_INTERVAL:-15}
EXPIRER_INTERVAL=${CISTERN_SWIFT_EXPIRER_INTERVAL:-2}
START_TIMEOUT=${CISTERN_SWIFT_START_TIMEOUT:-90}
KS_PROXY_PORT=${CISTERN_SWIFT_KEYSTONE_PORT:-8081}
KS_REGION=RegionOne
KS_CLIENT_USER=alice KS_CLIENT_PROJECT=alpha # scripts/keystone.sh's fixture
REGION=us-east-1
OBJECT_PART_POWER=10 # account/container rings use 1 partition (see build_rings)
PROXY_WORKERS=2      # 2/2 measured best on a 2-core box
OBJECT_WORKERS=2
USER_NAME=test:tester # tempauth account:user; also the S3 access key
USER_KEY=testing      # tempauth key; also the S3 secret

# The Swift binaries run under Debian's /usr/bin/python3; a pyenv/venv
# python3 earlier on PATH would not have the swift modules.
PY=/usr/bin/python3
PACKAGES=(swift swift-proxy swift-object swift-container swift-account memcached)
BINARIES=(swift-proxy-server swift-account-server swift-container-server
  swift-object-server swift-object-updater swift-container-updater memcached)
SERVERS=(memcached account-server container-server object-server proxy-server
  object-expirer object-updater container-updater)

# Importing eventlet's green DNS (dnspython + httpx) costs ~0.5 s per
# process; we only use IP literals.
export EVENTLET_NO_GREENDNS=yes PYTHONDONTWRITEBYTECODE=1

set_paths() {
  ETC=$STATE_DIR/etc LOGDIR=$STATE_DIR/log RUN=$STATE_DIR/run
  DEVICES=$STATE_DIR/srv CACHE=$STATE_DIR/cache
  # Every process we start carries this in its environment; stop only
  # signals processes that do (guards against reused pids).
  MARKER="CISTERN_SWIFT_STATE=$STATE_DIR"
}

print_env() {
  cat <<EOF
export CISTERN_SWIFT_AUTH_URL=http://127.0.0.1:$PROXY_PORT/auth/v1.0
export CISTERN_SWIFT_USER=$USER_NAME
export CISTERN_SWIFT_KEY=$USER_KEY
export CISTERN_S3_ENDPOINT=http://127.0.0.1:$PROXY_PORT
export CISTERN_S3_ACCESS_KEY=$USER_NAME
export CISTERN_S3_SECRET_KEY=$USER_KEY
export CISTERN_S3_REGION=$REGION
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

# launch NAME CMD...: own session (so its workers share its process group),
# pid file, stdout+stderr appended to log/NAME.log
launch() {
  local name=$1
  shift
  printf '==== %s %s\n' "$(date -u +%FT%TZ)" "$*" >>"$LOGDIR/$name.log"
  # shellcheck disable=SC2016 # $$ and $0 belong to the inner shell
  env "$MARKER" setsid bash -c 'echo $$ >"$0"; exec "$@"' "$RUN/$name.pid" "$@" \
    </dev/null >>"$LOGDIR/$name.log" 2>&1 &
}

all_alive() {
  local n
  for n in "${SERVERS[@]}"; do ours "$(cat "$RUN/$n.pid" 2>/dev/null)" || return 1; done
}

# stop_all [SIGNAL]: TERM (or KILL) every recorded pid and the rest of its
# process group (its workers, also ones orphaned by a killed parent), wait up
# to 10 s, then KILL what is left. Only processes with our marker are touched.
stop_all() {
  local sig=${1:-TERM} f st p pgid
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
  rm -f "$RUN"/*.pid
}

# ------------------------------------------------------------ readiness
# ready TIMEOUT: healthcheck on all four servers, a tempauth token, an
# authenticated account HEAD and an S3 SigV4 ListBuckets, retried until
# TIMEOUT seconds have passed.
ready() {
  "$PY" - "$1" "$PROXY_PORT" "$ACCOUNT_PORT" "$CONTAINER_PORT" "$OBJECT_PORT" \
    "$USER_NAME" "$USER_KEY" "$REGION" <<'EOF'
import datetime, hashlib, hmac, http.client, sys, time
timeout = float(sys.argv[1])
proxy, *servers = (int(p) for p in sys.argv[2:6])
user, key, region = sys.argv[6:9]

def req(port, method, path, headers={}):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        c.request(method, path, headers=headers)
        r = c.getresponse()
        r.read()
        return r.status, r.headers
    finally:
        c.close()

def sigv4_list_buckets():
    now = datetime.datetime.now(datetime.timezone.utc)
    amz, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    host, empty = "127.0.0.1:%d" % proxy, hashlib.sha256(b"").hexdigest()
    signed = "host;x-amz-content-sha256;x-amz-date"
    canonical = "GET\n/\n\nhost:%s\nx-amz-content-sha256:%s\nx-amz-date:%s\n\n%s\n%s" % (
        host, empty, amz, signed, empty)
    scope = "%s/%s/s3/aws4_request" % (day, region)
    to_sign = "AWS4-HMAC-SHA256\n%s\n%s\n%s" % (
        amz, scope, hashlib.sha256(canonical.encode()).hexdigest())
    k = ("AWS4" + key).encode()
    for part in (day, region, "s3", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
    return req(proxy, "GET", "/", {
        "Host": host, "X-Amz-Date": amz, "X-Amz-Content-Sha256": empty,
        "Authorization": "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s"
                         % (user, scope, signed, sig)})[0]

def check():
    for port in servers + [proxy]:
        st, _ = req(port, "GET", "/healthcheck")
        if st != 200:
            return "127.0.0.1:%d/healthcheck -> %d" % (port, st)
    st, h = req(proxy, "GET", "/auth/v1.0", {"X-Auth-User": user, "X-Auth-Key": key})
    if st != 200 or not h.get("X-Auth-Token"):
        return "tempauth GET /auth/v1.0 -> %d" % st
    path = "/" + h["X-Storage-Url"].split("/", 3)[3]
    st, _ = req(proxy, "HEAD", path, {"X-Auth-Token": h["X-Auth-Token"]})
    if st // 100 != 2:
        return "HEAD %s -> %d" % (path, st)
    st = sigv4_list_buckets()
    if st != 200:
        return "S3 SigV4 GET / -> %d" % st

deadline = time.time() + timeout
while True:
    try:
        err = check()
    except Exception as e:  # connection refused while starting, ...
        err = "%s: %s" % (type(e).__name__, e)
    if err is None:
        sys.exit(0)
    if time.time() >= deadline:
        print("swift-aio: not ready: %s" % err, file=sys.stderr)
        sys.exit(1)
    time.sleep(0.2)
EOF
}

# ------------------------------------------------------------ install
install_packages() {
  local b missing=0
  for b in "${BINARIES[@]}"; do command -v "$b" >/dev/null || missing=1; done
  [ -x "$PY" ] && "$PY" -c 'import swift' 2>/dev/null || missing=1
  [ $missing -eq 1 ] || return 0

  local -a sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "Swift is not installed and we are not root: apt-get install ${PACKAGES[*]}"
    sudo=(sudo)
  fi
  log "installing ${PACKAGES[*]} with apt-get"
  # Don't let the packages start their own services (Debian's swift-proxy
  # wants 0.0.0.0:8080, memcached 11211): the standard policy-rc.d switch,
  # only if the host has none (Docker images ship one).
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

# proxy_common_filters prints the filter sections both proxies share: the
# tempauth one and the Keystone one differ only in their auth filters.
proxy_common_filters() {
  cat <<EOF
[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$MEMCACHED_PORT
memcache_max_connections = 8

[filter:bulk]
use = egg:swift#bulk
delete_concurrency = 8

[filter:versioned_writes]
use = egg:swift#versioned_writes
allow_object_versioning = true

[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:tempurl]
use = egg:swift#tempurl
[filter:ratelimit]
use = egg:swift#ratelimit
[filter:copy]
use = egg:swift#copy
[filter:container-quotas]
use = egg:swift#container_quotas
[filter:account-quotas]
use = egg:swift#account_quotas
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
[filter:symlink]
use = egg:swift#symlink
EOF
}

# ------------------------------------------------------------ configs
write_configs() {
  local run_user
  run_user=$(id -un) # Swift always drops privileges to `user`

  # [DEFAULT] shared by the three storage servers. devices/srv/d1 is a plain
  # directory, hence mount_check = false.
  storage_default() { # NAME PORT WORKERS
    cat <<EOF
# generated by scripts/swift-aio.sh; rewritten on every start
[DEFAULT]
swift_dir = $ETC
devices = $DEVICES
mount_check = false
disable_fallocate = true
bind_ip = 127.0.0.1
bind_port = $2
workers = $3
user = $run_user
log_name = $1
log_level = $LOG_LEVEL
recon_cache_path = $CACHE

[pipeline:main]
pipeline = healthcheck recon $1

[filter:healthcheck]
use = egg:swift#healthcheck

[filter:recon]
use = egg:swift#recon

[app:$1]
use = egg:swift#${1%-server}
# the proxy already logs every request (at INFO)
log_requests = false
EOF
  }

  storage_default account-server "$ACCOUNT_PORT" 1 >"$ETC/account-server.conf"

  {
    storage_default container-server "$CONTAINER_PORT" 1
    cat <<EOF

[container-updater]
# Pushes container stats to the account, and registers the .expiring_objects
# task containers the expirer needs: without it expired objects stay listed.
interval = $CONTAINER_UPDATER_INTERVAL
concurrency = 1
EOF
  } >"$ETC/container-server.conf"

  {
    storage_default object-server "$OBJECT_PORT" "$OBJECT_WORKERS"
    cat <<EOF

[object-updater]
# Replays container updates the object server could not deliver in time
# (async pendings); without it such objects never appear in listings.
interval = $OBJECT_UPDATER_INTERVAL
objects_per_second = 0
EOF
  } >"$ETC/object-server.conf"

  # s3api must come before tempauth (it refuses to start otherwise); slo after
  # s3api gives S3 multipart, copy gives CopyObject. `cache` is required:
  # tempauth keeps its tokens only in memcached.
  cat >"$ETC/proxy-server.conf" <<EOF
# generated by scripts/swift-aio.sh; rewritten on every start
[DEFAULT]
swift_dir = $ETC
bind_ip = 127.0.0.1
bind_port = $PROXY_PORT
workers = $PROXY_WORKERS
user = $run_user
log_name = proxy-server
log_level = $LOG_LEVEL

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk tempurl ratelimit s3api tempauth copy container-quotas account-quotas slo dlo versioned_writes symlink proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
allow_account_management = true

[filter:tempauth]
use = egg:swift#tempauth
user_admin_admin = admin .admin .reseller_admin
user_test_tester = testing .admin
user_test_tester2 = testing2 .admin
user_test_tester3 = testing3
user_test2_tester2 = testing2 .admin
token_life = 86400

[filter:s3api]
use = egg:swift#s3api
# the only SigV4 region accepted
location = $REGION
dns_compliant_bucket_names = true
s3_acl = false
allow_multipart_uploads = true
multi_delete_concurrency = 8

$(proxy_common_filters)
EOF

  # The file name must contain "expirer": only then does the 2.30 expirer
  # process the (legacy) queue the object server writes. The same file
  # configures its internal proxy client.
  cat >"$ETC/object-expirer.conf" <<EOF
# generated by scripts/swift-aio.sh; rewritten on every start
[DEFAULT]
swift_dir = $ETC
user = $run_user
log_name = object-expirer
log_level = $LOG_LEVEL
recon_cache_path = $CACHE

[object-expirer]
interval = $EXPIRER_INTERVAL
tasks_per_second = 0
concurrency = 4

[pipeline:main]
pipeline = catch_errors cache proxy-server

[app:proxy-server]
use = egg:swift#proxy

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$MEMCACHED_PORT

[filter:catch_errors]
use = egg:swift#catch_errors
EOF
}

# One replica, one device d1 per ring. Account and container rings get a
# single partition: the container-updater forks a child per container
# partition on every pass (~1 CPU-s each). One object ring per storage policy
# in /etc/swift/swift.conf. Rebuilt only when the parameters change.
build_rings() {
  local policies stamp
  policies=$(sed -n 's/^[[:space:]]*\[storage-policy:\([0-9]\+\)\].*/\1/p' /etc/swift/swift.conf | xargs)
  stamp="pp=$OBJECT_PART_POWER a=$ACCOUNT_PORT c=$CONTAINER_PORT o=$OBJECT_PORT policies=${policies:-0}"
  if [ "$(cat "$ETC/rings.stamp" 2>/dev/null)" = "$stamp" ]; then return 0; fi
  log "building rings ($stamp)"
  # shellcheck disable=SC2086 # $policies is a list of integers
  "$PY" - "$ETC" "$OBJECT_PART_POWER" "$ACCOUNT_PORT" "$CONTAINER_PORT" "$OBJECT_PORT" ${policies:-0} <<'EOF'
import os, sys
from swift.common.ring import RingBuilder
etc, opp, aport, cport, oport = sys.argv[1], *(int(x) for x in sys.argv[2:6])
policies = {int(p) for p in sys.argv[6:]} | {0}
rings = [("account", aport, 0), ("container", cport, 0)]
rings += [("object-%d" % p if p else "object", oport, opp) for p in sorted(policies)]
for name, port, part_power in rings:
    b = RingBuilder(part_power, 1, 1)  # part power, replicas, min_part_hours
    b.add_dev({"region": 1, "zone": 1, "ip": "127.0.0.1", "port": port,
               "replication_ip": "127.0.0.1", "replication_port": port,
               "device": "d1", "weight": 1.0, "meta": ""})
    b.rebalance()
    b.save(os.path.join(etc, name + ".builder"))
    b.get_ring().save(os.path.join(etc, name + ".ring.gz"))
EOF
  echo "$stamp" >"$ETC/rings.stamp"
}

# ------------------------------------------------------------ keystone proxy
# keystone-start: a second proxy-server on $KS_PROXY_PORT, over the same
# rings, storage servers and memcached as the tempauth one, whose pipeline
# authenticates with Keystone (keystonemiddleware's authtoken + Swift's
# keystoneauth) instead of tempauth and s3api. The proxy on $PROXY_PORT is
# not touched. Keystone is the one scripts/keystone.sh prints
# (CISTERN_KEYSTONE_URL, CISTERN_KEYSTONE_PASSWORD): authtoken validates as
# its service user cistern, `member` and `admin` are operator roles (a user
# with either owns the account AUTH_<project id> of its token's project),
# and the object-store service is registered in Keystone's catalog
# (region RegionOne) at this proxy.

ks_set_env() {
  KS_URL=${CISTERN_KEYSTONE_URL:-}
  [ -n "$KS_URL" ] || die "CISTERN_KEYSTONE_URL is not set: out=\$(scripts/keystone.sh start) && eval \"\$out\" first"
  KS_URL=${KS_URL%/}
  KS_PASSWORD=${CISTERN_KEYSTONE_PASSWORD:-secret}
  KS_SVC_USER=${CISTERN_KEYSTONE_USER:-cistern}
  KS_SVC_PROJECT=${CISTERN_KEYSTONE_PROJECT:-service}
}

ks_print_env() {
  cat <<EOF
export CISTERN_SWIFT_KEYSTONE_AUTH_URL=$KS_URL
export CISTERN_SWIFT_KEYSTONE_USER=$KS_CLIENT_USER
export CISTERN_SWIFT_KEYSTONE_KEY=$KS_PASSWORD
export CISTERN_SWIFT_KEYSTONE_PROJECT=$KS_CLIENT_PROJECT
export CISTERN_SWIFT_KEYSTONE_DOMAIN=Default
export CISTERN_SWIFT_KEYSTONE_REGION=$KS_REGION
EOF
}

ks_write_config() {
  # authtoken keeps its validated tokens in Swift's memcache (swift.cache);
  # delay_auth_decision lets tempurl requests through to keystoneauth.
  cat >"$ETC/proxy-server-keystone.conf" <<EOF
# generated by scripts/swift-aio.sh keystone-start; rewritten on every start
[DEFAULT]
swift_dir = $ETC
bind_ip = 127.0.0.1
bind_port = $KS_PROXY_PORT
workers = 1
user = $(id -un)
log_name = proxy-server-keystone
log_level = $LOG_LEVEL

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk tempurl ratelimit authtoken keystoneauth copy container-quotas account-quotas slo dlo versioned_writes symlink proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
allow_account_management = true

[filter:authtoken]
paste.filter_factory = keystonemiddleware.auth_token:filter_factory
www_authenticate_uri = $KS_URL
auth_url = $KS_URL
auth_type = password
interface = public
username = $KS_SVC_USER
password = $KS_PASSWORD
user_domain_name = Default
project_name = $KS_SVC_PROJECT
project_domain_name = Default
delay_auth_decision = true
service_token_roles_required = true
include_service_catalog = false
cache = swift.cache

[filter:keystoneauth]
use = egg:swift#keystoneauth
operator_roles = admin, member

$(proxy_common_filters)
EOF
}

# ks_keystone register|ready TIMEOUT: register the object-store endpoint in
# Keystone's catalog (as admin; idempotent), or wait until the proxy answers
# an authenticated account HEAD with a token of the client user.
ks_keystone() {
  "$PY" - "$1" "${2:-0}" "$KS_URL" "$KS_PASSWORD" "$KS_PROXY_PORT" "$KS_REGION" \
    "$KS_CLIENT_USER" "$KS_CLIENT_PROJECT" <<'EOF'
import http.client, json, sys, time, urllib.error, urllib.request
mode, timeout, ks, password, port, region, user, project = sys.argv[1:9]
endpoint = "http://127.0.0.1:%s/v1/AUTH_%%(project_id)s" % port

def call(method, path, token=None, body=None, url=None):
    r = urllib.request.Request(url or ks + path, method=method,
                               data=json.dumps(body).encode() if body is not None else None)
    r.add_header("Content-Type", "application/json")
    if token:
        r.add_header("X-Auth-Token", token)
    with urllib.request.urlopen(r, timeout=10) as res:
        data = res.read()
        return res.status, res.headers, json.loads(data) if data else None

def token(name, proj):
    _, h, doc = call("POST", "/auth/tokens?nocatalog", body={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": name, "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": proj, "domain": {"name": "Default"}}}}})
    return h["X-Subject-Token"], doc["token"]["project"]["id"]

if mode == "register":
    admin, _ = token("admin", "admin")
    svcs = call("GET", "/services?type=object-store", admin)[2]["services"]
    sid = svcs[0]["id"] if svcs else call("POST", "/services", admin,
        {"service": {"name": "swift", "type": "object-store"}})[2]["service"]["id"]
    eps = call("GET", "/endpoints?interface=public&service_id=" + sid, admin)[2]["endpoints"]
    eps = [e for e in eps if e["region_id"] == region]
    if not eps:
        call("POST", "/endpoints", admin, {"endpoint": {"service_id": sid, "interface": "public",
                                                      "region_id": region, "url": endpoint}})
    elif eps[0]["url"] != endpoint:
        call("PATCH", "/endpoints/" + eps[0]["id"], admin, {"endpoint": {"url": endpoint}})
    sys.exit(0)

deadline = time.time() + float(timeout)
while True:
    try:
        c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=5)
        c.request("GET", "/healthcheck")
        st = c.getresponse().status
        if st != 200:
            err = "healthcheck -> %d" % st
        else:
            tok, pid = token(user, project)
            c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=10)
            c.request("HEAD", "/v1/AUTH_" + pid, headers={"X-Auth-Token": tok})
            st = c.getresponse().status
            err = None if st // 100 == 2 else "HEAD /v1/AUTH_%s as %s -> %d" % (pid, user, st)
    except Exception as e:  # connection refused while starting, ...
        err = "%s: %s" % (type(e).__name__, e)
    if err is None:
        sys.exit(0)
    if time.time() >= deadline:
        print("swift-aio: keystone proxy not ready: %s" % err, file=sys.stderr)
        sys.exit(1)
    time.sleep(0.2)
EOF
}

ks_alive() { ours "$(cat "$RUN/proxy-server-keystone.pid" 2>/dev/null)"; }

ks_settings() { echo "$KS_PROXY_PORT $KS_URL $(printf %s "$KS_PASSWORD" | sha256sum | cut -c1-16)"; }

# ks_stop: only the keystone proxy's process group, with our marker
ks_stop() {
  local leader f st p pgid
  local -a targets=()
  leader=$(cat "$RUN/proxy-server-keystone.pid" 2>/dev/null) || return 0
  for f in /proc/[0-9]*/stat; do
    { read -r st <"$f"; } 2>/dev/null || continue
    p=${f#/proc/} p=${p%/stat}
    st=${st##*) } pgid=${st#* * } pgid=${pgid%% *}
    [[ $p == "$leader" || $pgid == "$leader" ]] || continue
    if ours "$p"; then targets+=("$p"); fi
  done
  if [ ${#targets[@]} -gt 0 ]; then
    kill -TERM "${targets[@]}" 2>/dev/null || true
    for _ in $(seq 100); do
      local -a left=()
      for p in "${targets[@]}"; do if ours "$p"; then left+=("$p"); fi; done
      [ ${#left[@]} -gt 0 ] || break
      sleep 0.1
    done
    [ ${#left[@]} -eq 0 ] || kill -KILL "${left[@]}" 2>/dev/null || true
  fi
  rm -f "$RUN/proxy-server-keystone.pid" "$RUN/keystone-settings"
}

cmd_keystone_start() {
  ks_set_env
  cmd_status || die "Swift is not running: scripts/swift-aio.sh start first (the keystone proxy shares its storage servers)"
  if [ "$(cat "$RUN/keystone-settings" 2>/dev/null)" = "$(ks_settings)" ] && ks_alive &&
    ks_keystone register && ks_keystone ready 5 2>/dev/null; then
    ks_print_env
    log "keystone proxy already running on 127.0.0.1:$KS_PROXY_PORT ($(elapsed)s)"
    return 0
  fi
  ks_stop
  if ! "$PY" -c 'import keystonemiddleware.auth_token' 2>/dev/null; then
    local -a sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    log "installing python3-keystonemiddleware with apt-get"
    local -a apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -y -q -o DPkg::Lock::Timeout=600)
    "${apt[@]}" install python3-keystonemiddleware >&2 ||
      { "${apt[@]}" update >&2 && "${apt[@]}" install python3-keystonemiddleware >&2; } ||
      die "apt-get install python3-keystonemiddleware failed"
  fi
  ! port_busy "$KS_PROXY_PORT" || die "127.0.0.1:$KS_PROXY_PORT is already in use by another process (see CISTERN_SWIFT_KEYSTONE_PORT)"
  ks_write_config
  ks_keystone register || die "registering the object-store endpoint in Keystone ($KS_URL) failed"
  launch proxy-server-keystone swift-proxy-server "$ETC/proxy-server-keystone.conf" -v
  if ! ks_keystone ready "$START_TIMEOUT"; then
    tail -n 15 "$LOGDIR/proxy-server-keystone.log" >&2
    ks_stop
    die "the keystone proxy did not come up (logs in $LOGDIR/proxy-server-keystone.log)"
  fi
  ks_settings >"$RUN/keystone-settings"
  ks_print_env
  log "keystone proxy up on 127.0.0.1:$KS_PROXY_PORT in $(elapsed)s"
}

cmd_keystone_stop() {
  [ -d "$STATE_DIR" ] || return 0
  STATE_DIR=$(cd "$STATE_DIR" && pwd -P)
  set_paths
  ks_stop
  log "keystone proxy stopped ($(elapsed)s)"
}

cmd_keystone_status() {
  ks_set_env
  cmd_status && ks_alive && ks_keystone ready 5
}

# ------------------------------------------------------------ commands
settings() {
  echo "$PROXY_PORT $OBJECT_PORT $CONTAINER_PORT $ACCOUNT_PORT $MEMCACHED_PORT" \
    "$LOG_LEVEL $CONTAINER_UPDATER_INTERVAL $OBJECT_UPDATER_INTERVAL $EXPIRER_INTERVAL"
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

cmd_start() {
  mkdir -p "$STATE_DIR"
  STATE_DIR=$(cd "$STATE_DIR" && pwd -P)
  set_paths

  # Fast path: everything we started is alive, the settings are unchanged
  # and the stack answers.
  if [ -f "$RUN/settings" ] && [ "$(cat "$RUN/settings")" = "$(settings)" ] &&
    all_alive && ready 5 2>/dev/null; then
    print_env
    log "already running ($(elapsed)s; state $STATE_DIR)"
    return 0
  fi
  if [ -d "$RUN" ]; then stop_all; fi

  install_packages
  grep -Eq '^[[:space:]]*swift_hash_path_(suffix|prefix)[[:space:]]*=[[:space:]]*[^[:space:]]' \
    /etc/swift/swift.conf 2>/dev/null ||
    die "/etc/swift/swift.conf (shipped by the 'swift' package) is missing or has no hash path prefix/suffix; Swift always reads it from there"

  local p
  for p in "$PROXY_PORT" "$OBJECT_PORT" "$CONTAINER_PORT" "$ACCOUNT_PORT" "$MEMCACHED_PORT"; do
    ! port_busy "$p" || die "127.0.0.1:$p is already in use by another process (see the CISTERN_SWIFT_*PORT variables)"
  done

  mkdir -p "$ETC" "$LOGDIR" "$RUN" "$DEVICES/d1" "$CACHE"
  touch "$STATE_DIR/.cistern-swift"
  # object metadata lives in user.* xattrs
  "$PY" -c 'import os, sys, tempfile
with tempfile.NamedTemporaryFile(dir=sys.argv[1]) as f:
    os.setxattr(f.name, "user.swift.test", b"1")' "$DEVICES/d1" 2>/dev/null ||
    die "the filesystem of $STATE_DIR has no user xattrs (tmpfs before Linux 6.6?); set CISTERN_SWIFT_DIR elsewhere"

  write_configs
  build_rings

  # -v adds a stderr log handler (= log/NAME.log); without it Swift logs to
  # syslog only, which is usually absent in containers and CI.
  local expirer=(swift-object-expirer)
  if ! command -v swift-object-expirer >/dev/null; then
    # its entry point lives in the optional swift-object-expirer package
    expirer=("$PY" -c 'from swift.common.daemon import run_daemon
from swift.common.utils import parse_options
from swift.obj.expirer import ObjectExpirer
conf, options = parse_options(once=True)
run_daemon(ObjectExpirer, conf, **options)')
  fi
  # memcached refuses to run as root without -u
  launch memcached memcached -u "$(id -un)" -l 127.0.0.1 -p "$MEMCACHED_PORT" -U 0 -m 64 -c 1024
  launch account-server swift-account-server "$ETC/account-server.conf" -v
  launch container-server swift-container-server "$ETC/container-server.conf" -v
  launch object-server swift-object-server "$ETC/object-server.conf" -v
  launch proxy-server swift-proxy-server "$ETC/proxy-server.conf" -v
  launch object-expirer "${expirer[@]}" "$ETC/object-expirer.conf" -v
  launch object-updater swift-object-updater "$ETC/object-server.conf" -v
  launch container-updater swift-container-updater "$ETC/container-server.conf" -v
  settings >"$RUN/settings"

  # the daemons are not on the request path: check they are still alive too
  if ! ready "$START_TIMEOUT" || ! { sleep 0.3 && all_alive; }; then
    local f
    for f in "$LOGDIR"/*.log; do
      printf -- '---- %s\n' "$f" >&2
      tail -n 15 "$f" >&2
    done
    stop_all
    die "Swift did not come up (logs in $LOGDIR)"
  fi
  print_env
  log "up in $(elapsed)s (state $STATE_DIR, logs $LOGDIR)"
}

cmd_stop() {
  [ -d "$STATE_DIR" ] || { log "no state dir $STATE_DIR; nothing to stop"; return 0; }
  STATE_DIR=$(cd "$STATE_DIR" && pwd -P)
  set_paths
  stop_all "${1:-TERM}"
  log "stopped ($(elapsed)s)"
}

cmd_wipe() {
  [ -d "$STATE_DIR" ] || return 0
  [ -f "$STATE_DIR/.cistern-swift" ] ||
    die "$STATE_DIR has no .cistern-swift marker; not deleting it"
  cmd_stop KILL # the data goes away anyway
  rm -rf -- "$STATE_DIR"
  log "wiped $STATE_DIR"
}

cmd_status() {
  [ -d "$STATE_DIR" ] || return 1
  STATE_DIR=$(cd "$STATE_DIR" && pwd -P)
  set_paths
  # check the ports the instance was started with
  read -r PROXY_PORT OBJECT_PORT CONTAINER_PORT ACCOUNT_PORT _ <"$RUN/settings" 2>/dev/null || return 1
  all_alive && ready 5
}

case "${1:-start}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  wipe) cmd_wipe ;;
  status) cmd_status ;;
  env) print_env ;;
  keystone-start) cmd_keystone_start ;;
  keystone-stop) cmd_keystone_stop ;;
  keystone-status) cmd_keystone_status ;;
  *)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
