#!/usr/bin/env bash
# scripts/test.sh: every test of the project, as CI runs it.
#
# Starts the backends the tests need on 127.0.0.1 (a single-node OpenStack
# Swift serving the Swift and S3 APIs, versitygw, an S3 server that
# enforces conditional writes, a Keystone with the fixture of
# scripts/keystone.sh, a second Swift proxy authenticating with that
# Keystone, and a one-member etcd for cluster mode, CISTERN_ETCD),
# installing them first on a fresh machine, then
# checks formatting and vet, then runs `go test -race ./...` with the
# Swift, S3, Keystone and etcd suites required: a missing backend fails the run
# instead of skipping; python3-zaqarclient and python3-openstackclient are
# installed the same way for the client tests. Services this script
# started are stopped again at the end.
#
#   scripts/test.sh              everything
#   scripts/test.sh ./index/...  only these packages (backends still started)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf 'test.sh: %s\n' "$*" >&2; }

started=() # "script command" to undo a start, in start order
cleanup() {
  local i
  for ((i = ${#started[@]} - 1; i >= 0; i--)); do
    # shellcheck disable=SC2086 # "script command"
    scripts/${started[i]% *}.sh ${started[i]#* } >/dev/null 2>&1 || true
  done
}
trap cleanup EXIT

for s in swift-aio versitygw keystone etcd; do
  if ! scripts/"$s".sh status >/dev/null 2>&1; then started+=("$s stop"); fi
  # Checked before eval: eval of an empty output succeeds, and the tests
  # would then skip or fail far from the cause.
  out=$(scripts/"$s".sh start) || { log "scripts/$s.sh start failed (its error is above)"; exit 1; }
  # The tests turn keystone auth on per server; exported, the strategy would
  # also switch on in the cistern binaries the cmd tests start.
  eval "$(grep -v '^export CISTERN_AUTH_STRATEGY=' <<<"$out")"
done
# The Swift driver's Keystone path: a second Swift proxy with authtoken +
# keystoneauth against that Keystone (the tempauth proxy stays as it is).
if ! scripts/swift-aio.sh keystone-status >/dev/null 2>&1; then started+=("swift-aio keystone-stop"); fi
out=$(scripts/swift-aio.sh keystone-start) || { log "scripts/swift-aio.sh keystone-start failed (its error is above)"; exit 1; }
eval "$out"
export CISTERN_REQUIRE_BACKENDS=1

# Real Zaqar clients (Debian's python3-zaqarclient, and python3-openstackclient
# for the `openstack messaging` CLI) drive the server in
# server/zaqarclient_test.go and, with Keystone tokens, in
# server/zaqarclient_keystone_test.go; python3-websocket is what
# zaqarclient's websocket transport needs; python3-aiosmtpd is the SMTP sink
# mailto: delivery is tested against (notify/mailto_test.go).
if ! /usr/bin/python3 -c 'import zaqarclient, websocket, aiosmtpd' 2>/dev/null || [ ! -x /usr/bin/openstack ]; then
  log "installing python3-zaqarclient python3-openstackclient python3-websocket python3-aiosmtpd"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q python3-zaqarclient python3-openstackclient python3-websocket python3-aiosmtpd >/dev/null ||
    { apt-get update -q >/dev/null && apt-get install -y -q python3-zaqarclient python3-openstackclient python3-websocket python3-aiosmtpd >/dev/null; }
fi
export CISTERN_REQUIRE_ZAQARCLIENT=1

log "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then
  log "not gofmt-formatted: $unformatted"
  exit 1
fi
log "go vet"
go vet ./...

pkgs=("$@")
[ ${#pkgs[@]} -gt 0 ] || pkgs=(./...)
log "go test -race ${pkgs[*]}"
go test -race -count=1 -timeout 45m "${pkgs[@]}"
