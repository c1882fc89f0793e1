#!/usr/bin/env bash
# fuzz.sh [REGEX]
#
# Runs every Go fuzz target of the repository, one after another, each for
# FUZZTIME (default 10m), and stops at the first failure, naming the package
# and the target. The targets are found when the script starts (every
# `func FuzzXxx(f *testing.F)` in a _test.go file), so new ones are picked up
# without editing this file. With REGEX, only targets whose "package
# FuzzName" (e.g. "./server/wire FuzzDecodeClaim") matches it are run.
# Prints one summary line per target at the end (PASS, FAIL or "not run").
#
# Environment:
#   FUZZTIME       time per target, any `go test -fuzztime` value (default 10m;
#                  "1000x" runs 1000 inputs)
#   FUZZ_PARALLEL  fuzzing workers per target (go test -parallel; default:
#                  GOMAXPROCS)
#   FUZZ_LOGS      directory for each target's go test output (default: a
#                  temporary directory, kept and named at the end)
#
# A failing input is written by go test to
# <package>/testdata/fuzz/<FuzzName>/<hash>; commit it with the fix, so that
# plain `go test` replays it from then on.
#
# This is a benchmark-job tool, not CI: 10 minutes per target is long.
# Exit status: 0 when every target passed, 1 at the first failure, 2 on
# bad usage.
set -euo pipefail

PROG=fuzz
log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { printf '%s: ERROR: %s\n' "$PROG" "$*" >&2; exit 2; }

case ${1:-} in -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 0 ;; esac
[ $# -le 1 ] || die "usage: fuzz.sh [REGEX]"
FILTER=${1:-}
FUZZTIME=${FUZZTIME:-10m}
[[ $FUZZTIME =~ ^[0-9]+(x|ns|us|ms|s|m|h)?([0-9]+(ns|us|ms|s|m|h))*$ ]] || die "FUZZTIME=$FUZZTIME: want a go duration (10m) or a count (1000x)"
if [ -n "${FUZZ_PARALLEL:-}" ]; then
  [[ $FUZZ_PARALLEL =~ ^[1-9][0-9]*$ ]] || die "FUZZ_PARALLEL=$FUZZ_PARALLEL: want a positive whole number"
fi

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$REPO"
LOGS=${FUZZ_LOGS:-$(mktemp -d "${TMPDIR:-/tmp}/cistern-fuzz.XXXXXX")}
mkdir -p "$LOGS"

# Every "./dir FuzzName", sorted, outside testdata and vendor. A fuzz target
# is a top-level func FuzzXxx taking a *testing.F.
mapfile -t TARGETS < <(
  grep -rEo --include='*_test.go' --exclude-dir=testdata --exclude-dir=vendor \
    '^func Fuzz[A-Za-z0-9_]*\([A-Za-z_][A-Za-z0-9_]* \*testing\.F\)' . |
    sed -E 's#^(.*)/[^/]+_test\.go:func (Fuzz[A-Za-z0-9_]*)\(.*#\1 \2#' |
    { if [ -n "$FILTER" ]; then grep -E -- "$FILTER" || true; else cat; fi; } |
    sort -u
)
[ ${#TARGETS[@]} -gt 0 ] || die "no fuzz target${FILTER:+ matches $FILTER}"
log "${#TARGETS[@]} fuzz targets, $FUZZTIME each; go test output in $LOGS"

RESULTS=() # one summary line per target
FAILED=""
summary() {
  local line t
  printf '\n%-6s %-24s %-28s %s\n' RESULT PACKAGE TARGET DETAIL
  for line in "${RESULTS[@]}"; do printf '%s\n' "$line"; done
  for t in "${TARGETS[@]:${#RESULTS[@]}}"; do
    printf '%-6s %-24s %-28s %s\n' "-" "${t% *}" "${t#* }" "not run (stopped at the first failure)"
  done
}

for t in "${TARGETS[@]}"; do
  pkg=${t% *} name=${t#* }
  out=$LOGS/$(tr '/.' '__' <<<"${pkg#./}")-$name.log
  args=(test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME")
  [ -n "${FUZZ_PARALLEL:-}" ] && args+=(-parallel "$FUZZ_PARALLEL")
  log "$pkg $name"
  start=$SECONDS rc=0
  go "${args[@]}" "$pkg" >"$out" 2>&1 || rc=$?
  took=$((SECONDS - start))s
  # the last progress line says how many inputs were tried
  execs=$(grep -Eo 'execs: [0-9]+' "$out" | tail -n 1 | cut -d' ' -f2 || true)
  if [ $rc -eq 0 ]; then
    RESULTS+=("$(printf '%-6s %-24s %-28s %s' PASS "$pkg" "$name" "$took, ${execs:-?} execs")")
    continue
  fi
  input=$(grep -Eo 'testdata/fuzz/[^ ]+' "$out" | tail -n 1 || true)
  RESULTS+=("$(printf '%-6s %-24s %-28s %s' FAIL "$pkg" "$name" "$took, exit $rc${input:+, input $pkg/$input}")")
  FAILED="$pkg $name"
  log "FAIL: $pkg $name (go test exit $rc); its output:"
  grep -v '^fuzz: elapsed' "$out" | tail -n 40 >&2
  break
done

summary
if [ -n "$FAILED" ]; then
  log "stopped at the first failure: $FAILED; full output in $LOGS"
  exit 1
fi
log "all ${#TARGETS[@]} targets passed ($FUZZTIME each)"
