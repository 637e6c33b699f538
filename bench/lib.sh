# shellcheck shell=bash disable=SC2034  # variables here are read by the sourcing scripts
# Shared helpers of bench/compare.sh and bench/shaping.sh; source it, do not run it.
#
# Every process a script starts is recorded in STARTED (pid list) and stopped by
# pid, with its descendants, in bench_cleanup, which the scripts run on EXIT.
# Only 127.0.0.1 is ever listened on or connected to.

BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STARTED=()
WORK=""
KEEP_WORK=0

log() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# bench_init makes the work directory and installs the EXIT trap.
bench_init() {
  WORK=$(mktemp -d /tmp/sockbench.XXXXXX)
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}

bench_cleanup() {
  local pid
  for pid in "${STARTED[@]}"; do stop_pid "$pid"; done
  if [ -n "${CLEANUP_HOOK:-}" ]; then "$CLEANUP_HOOK"; fi
  if [ "$KEEP_WORK" = 1 ]; then log "work files kept in $WORK"; elif [ -n "$WORK" ]; then rm -rf "$WORK"; fi
}

# raise_nofile N raises the descriptor limit of this shell, and so of every proxy
# it starts, to at least N, or as far as the hard limit allows.
raise_nofile() {
  local soft hard
  soft=$(ulimit -n) hard=$(ulimit -Hn)
  [ "$soft" = unlimited ] || [ "$soft" -ge "$1" ] && return 0
  if [ "$hard" != unlimited ] && [ "$hard" -lt "$1" ] && ! ulimit -Hn "$1" 2>/dev/null; then
    log "cannot raise the hard descriptor limit $hard to $1 (needs CAP_SYS_RESOURCE); using $hard"
    ulimit -n "$hard"
    return 0
  fi
  ulimit -n "$1"
}

# need_packages CMD:PACKAGE... installs the Debian packages of missing commands.
need_packages() {
  local missing=() pair
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || die "missing ${missing[*]}; run as root or install them"
  log "installing ${missing[*]}"
  apt-get update -qq
  # RUNLEVEL=1 keeps the packages' init scripts from starting system services.
  DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# build_tools builds sockbench (required) and sockshaper (optional: SOCKSHAPER_OK=0
# when it does not build) into $WORK; sockshaper from the tree SOCKSHAPER_TREE
# when set (another checkout, for before/after runs), else from this one.
build_tools() {
  (cd "$BENCH_ROOT" && go build -o "$WORK/sockbench" ./bench/sockbench) || die "sockbench does not build"
  SOCKSHAPER_OK=1
  if ! (cd "${SOCKSHAPER_TREE:-$BENCH_ROOT}" && go build -o "$WORK/sockshaper" ./cmd/sockshaper) 2>"$WORK/sockshaper-build.log"; then
    SOCKSHAPER_OK=0
    log "sockshaper does not build yet (see below); its figures are skipped"
    cat "$WORK/sockshaper-build.log" >&2
  fi
}

# descendants PID prints PID's descendants, deepest last.
descendants() {
  local child
  for child in $(pgrep -P "$1" 2>/dev/null); do
    echo "$child"
    descendants "$child"
  done
}

# running PID reports whether PID exists and is not a zombie (our own children
# stay zombies until waited for).
running() {
  local st
  st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  st=${st##*) }
  [ "${st%% *}" != Z ]
}

# stop_pid PID sends SIGTERM to PID, waits up to 5 s for it and the descendants it
# had, then sends SIGKILL to each of those pids still alive.
stop_pid() {
  local pid=$1 tree p alive
  kill -0 "$pid" 2>/dev/null || return 0
  tree="$pid $(descendants "$pid")"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do
    alive=0
    for p in $tree; do running "$p" && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for p in $tree; do kill -KILL "$p" 2>/dev/null || true; done
  wait "$pid" 2>/dev/null || true
}

# forget_pid PID drops a stopped pid from STARTED.
forget_pid() {
  local keep=() p
  for p in "${STARTED[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  STARTED=("${keep[@]}")
}

# free_port prints a TCP port of 127.0.0.1 that nothing listens on.
free_port() {
  local p
  for _ in $(seq 100); do
    p=$((20000 + RANDOM % 10000))
    [ -z "$(ss -Htln "sport = :$p")" ] && { echo "$p"; return 0; }
  done
  die "no free port found"
}

# wait_port PORT waits up to 5 s until something listens on PORT.
wait_port() {
  for _ in $(seq 50); do
    [ -n "$(ss -Htln "sport = :$1")" ] && return 0
    sleep 0.1
  done
  die "nothing listens on port $1"
}

# start_sockshaper CONFIG [FLAG...] starts $SS_BIN (default: $WORK/sockshaper)
# with CONFIG and the flags, and sets SS_PID and SS_ADDR (the SOCKS5 address it
# logged).
start_sockshaper() {
  local logf="$WORK/sockshaper.$RANDOM.log" config=$1
  shift
  "${SS_BIN:-$WORK/sockshaper}" -config "$config" -log-format json "$@" 2>"$logf" &
  SS_PID=$!
  STARTED+=("$SS_PID")
  SS_ADDR=""
  for _ in $(seq 100); do
    SS_ADDR=$(jq -Rr 'fromjson? | select(.msg=="serving") | .listen' "$logf" 2>/dev/null | head -1) || true
    [ -n "$SS_ADDR" ] && return 0
    running "$SS_PID" || break
    sleep 0.1
  done
  cat "$logf" >&2
  die "sockshaper did not start"
}

# make_users FILE USER... writes a bcrypt users file (password: $BENCH_PASS).
make_users() {
  local file=$1 user
  shift
  : >"$file"
  for user in "$@"; do
    printf '%s\n' "$BENCH_PASS" | "$WORK/sockshaper" passwd "$user" >>"$file"
  done
}

# bench SCENARIO ARGS... runs sockbench with -json and prints its JSON; the
# output is also kept in $WORK/runs.
bench() {
  local out
  out="$WORK/runs/$(date +%s%N).json"
  mkdir -p "$WORK/runs"
  "$WORK/sockbench" "$@" -json >"$out" 2>>"$WORK/sockbench.log" || { log "sockbench $* failed: $(tail -2 "$WORK/sockbench.log")"; echo '{}'; return 0; }
  cat "$out"
}

# num N prints N with three significant digits, or as a whole number from 1000 on.
num() {
  awk -v v="$1" 'BEGIN {a = v < 0 ? -v : v; if (a >= 1000) printf "%.0f", v; else printf "%.3g", v}'
}

# median reads numbers, one per line, and prints their median ("-" for none).
median() {
  sort -g | awk '{v[NR]=$1} END {if (NR==0) print "-"; else if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'
}

# settle_timewait MAX waits (at most 65 s: TIME_WAIT's 60 s and a margin) until at
# most MAX TCP sockets are in TIME_WAIT, so that a run's connects do not compete
# with an earlier run's leftovers for ephemeral ports.
settle_timewait() {
  local start=$SECONDS n
  while n=$(ss -Htan state time-wait | wc -l) && [ "$n" -gt "$1" ] && [ $((SECONDS - start)) -lt 65 ]; do
    sleep 1
  done
  [ $((SECONDS - start)) -gt 0 ] && log "waited $((SECONDS - start)) s for TIME_WAIT sockets to expire ($n left)"
  return 0
}

# ROUND is the round under way; the scripts record it with each value, so that
# ratios pair the runs of one round (interleaved, under the same load).
ROUND=0

# ratio_cell FILE FIGURE A B prints the median (min–max) over the rounds of A's
# value divided by B's in the same round, from FILE's lines FIGURE\tPROXY\tVALUE\tROUND;
# "-" when no round has both.
ratio_cell() {
  local vals m lo hi
  vals=$(awk -F'\t' -v f="$2" -v a="$3" -v b="$4" '
    $1==f && $2==a {va[$4]=$3}
    $1==f && $2==b {vb[$4]=$3}
    END {for (r in va) if ((r in vb) && vb[r] > 0) print va[r]/vb[r]}' "$1" | sort -g)
  [ -z "$vals" ] && { echo "-"; return; }
  m=$(median <<<"$vals"); lo=$(head -1 <<<"$vals"); hi=$(tail -1 <<<"$vals")
  if [ "$(wc -l <<<"$vals")" -gt 1 ]; then
    printf '%.2f× (%.2f–%.2f)\n' "$m" "$lo" "$hi"
  else
    printf '%.2f×\n' "$m"
  fi
}

# verdict FILE FIGURE A B TARGET prints "met" when the median ratio of A to B
# (as ratio_cell) is at least TARGET, "missed" otherwise, "-" without figures.
verdict() {
  local m
  m=$(awk -F'\t' -v f="$2" -v a="$3" -v b="$4" '
    $1==f && $2==a {va[$4]=$3}
    $1==f && $2==b {vb[$4]=$3}
    END {for (r in va) if ((r in vb) && vb[r] > 0) print va[r]/vb[r]}' "$1" | median)
  [ "$m" = "-" ] && { echo "-"; return; }
  awk -v m="$m" -v t="$5" 'BEGIN {print (m >= t) ? "met" : "missed"}'
}

# load_note prints the load averages and the time, for the tables' headers.
load_note() {
  echo "load $(cut -d' ' -f1-3 /proc/loadavg) at $(date +%T)"
}

# build_before REV builds sockshaper at git revision REV of this repository into
# $WORK/sockshaper-before (for before/after runs in one script), from a copy
# of the tree at REV.
build_before() {
  local src="$WORK/before-src"
  mkdir -p "$src"
  git -C "$BENCH_ROOT" archive "$1" | tar -x -C "$src" || die "git archive $1 failed"
  (cd "$src" && go build -o "$WORK/sockshaper-before" ./cmd/sockshaper) || die "sockshaper at $1 does not build"
}
