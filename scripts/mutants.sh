#!/usr/bin/env bash
# Mutation testing of one package, for developers (not a CI gate): gremlins
# changes the package's code one small mutation at a time (a < becomes <=, a +
# becomes -, a condition is negated) and runs the package's tests on each; a
# mutant the tests still pass ("LIVED") is behaviour no test pins down.
#
#   bash scripts/mutants.sh shaping          # or ./shaping, proxy/auth, usage, cluster
#   WORKERS=1 COEFFICIENT=8 bash scripts/mutants.sh usage
#
# One package at a time: a run of shaping/ takes tens of minutes on two cores.
# gremlins is installed at a pinned version into $(go env GOPATH)/bin when
# missing. The machine-readable results go to $OUT (default
# ${TMPDIR:-/tmp}/mutants-PKG.json); the surviving mutants are printed at the end.
# docs/testing.md says how to read them and what the packages scored.
set -euo pipefail
cd "$(dirname "$0")/.."

version=v0.6.0
pkg=${1:?usage: bash scripts/mutants.sh PKG (shaping, proxy/auth, usage, cluster, ...)}
pkg=./${pkg#./}
pkg=${pkg%/}
[ -d "$pkg" ] || { echo "no package folder $pkg" >&2; exit 2; }

gremlins="$(go env GOPATH)/bin/gremlins"
if ! go version -m "$gremlins" 2>/dev/null | grep -q "github.com/go-gremlins/gremlins[[:space:]]*$version"; then
  echo "installing: gremlins $version"
  GOFLAGS= go install "github.com/go-gremlins/gremlins/cmd/gremlins@$version"
fi

# Two workers fill two cores; each mutant's test run gets COEFFICIENT times the
# unmutated run's time (compile included) before it counts as TIMED OUT, wide
# enough for a machine shared with other builds. -count=1: a cached coverage
# run would take no time and make every mutant time out; -vet=off: go vet
# checks the code, not the tests' verdict, and would double each mutant's cost.
workers=${WORKERS:-2}
coefficient=${COEFFICIENT:-6}
name=$(echo "${pkg#./}" | tr / -)
out=${OUT:-${TMPDIR:-/tmp}/mutants-$name.json}
if at=$(git rev-parse --short HEAD 2>/dev/null); then
  git diff --quiet HEAD -- "$pkg" || at="$at (modified)"
else
  at="a copy outside git"
fi
echo "mutants of $pkg at $at, $workers workers, timeout x$coefficient"
GOFLAGS="-count=1 -vet=off" "$gremlins" unleash --workers "$workers" --timeout-coefficient "$coefficient" \
  --output "$out" --output-statuses lt "$pkg"
echo "results: $out"
