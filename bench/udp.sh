#!/usr/bin/env bash
# udp.sh: sockshaper's UDP ASSOCIATE relay against Dante's and the direct path
# (the ceiling), all on 127.0.0.1, measured with sockbench's udp scenario.
#
# Figures, at 200-byte datagrams, each association sending to its own UDP echo:
# datagrams/s echoed over 1 and 16 associations with 32 datagrams in flight
# each, with the proxy's CPU seconds per million datagrams and the datagrams
# lost; round trips p50/p99 over 1 and 16 associations with one datagram in
# flight each. sockshaper runs unshaped with a bcrypt user, as in compare.sh;
# Dante authenticates a system user. Runs are interleaved across the paths
# (A B C A B C ...) for -rounds rounds; the table shows the median, with the
# range of the rounds in brackets.
#
# usage: bench/udp.sh [-rounds N] [-quick] [-baseline REF] [-keep]
#   -rounds N      rounds (default 3, about 4 minutes); -quick: 1 round of 2 s runs
#   -baseline REF  also measure sockshaper built at git REF (e.g. main), as
#                  "before", interleaved with the others, same config
#   -keep          keep the work directory (configs, logs, every JSON result)
# Needs root to install dante-server and to create the system user Dante
# authenticates (sockbench, removed again at exit if this run made it).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/proxies.sh"

ROUNDS=3 DUR=5s SIZE=200 WINDOW=32 SHAPED_RATE=50MiB BASELINE="" BASE_PID="" BASE_ADDR=""
while [ $# -gt 0 ]; do
  case $1 in
    -rounds) ROUNDS=$2; shift ;;
    -baseline) BASELINE=$2; shift ;;
    -quick) ROUNDS=1 DUR=2s ;;
    -keep) KEEP_WORK=1 ;;
    *) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
  esac
  shift
done
[[ $ROUNDS =~ ^[1-9][0-9]?$ ]] || die "-rounds: want 1 to 99"

# udp_names prints the paths to measure, direct first.
udp_names() {
  echo direct
  [ -n "$BASE_PID" ] && echo before
  [ "$SOCKSHAPER_OK" = 1 ] && echo sockshaper
  echo dante
}

# build_baseline builds sockshaper at $BASELINE into $WORK/base/sockshaper.
build_baseline() {
  mkdir -p "$WORK/base/src"
  git -C "$BENCH_ROOT" archive "$BASELINE" | tar -x -C "$WORK/base/src" || die "-baseline $BASELINE: no such commit"
  (cd "$WORK/base/src" && go build -o "$WORK/base/sockshaper" ./cmd/sockshaper) || die "-baseline $BASELINE does not build"
}

# start_baseline starts the baseline binary on the unshaped config, through
# start_sockshaper, which runs $WORK/sockshaper: renamed aside meanwhile (a
# running binary can be renamed, not overwritten).
start_baseline() {
  mv "$WORK/sockshaper" "$WORK/sockshaper.current"
  cp "$WORK/base/sockshaper" "$WORK/sockshaper"
  start_sockshaper "$WORK/unshaped.yaml"
  mv "$WORK/sockshaper" "$WORK/base/sockshaper.running"
  mv "$WORK/sockshaper.current" "$WORK/sockshaper"
  BASE_PID=$SS_PID BASE_ADDR=$SS_ADDR
}

# udp_conn NAME prints the sockbench flags that reach NAME; udp_pid its -pid.
udp_conn() {
  if [ "$1" = before ]; then echo "-proxy $BASE_ADDR -users bench -password $BENCH_PASS"; else proxy_conn "$1"; fi
}
udp_pid() {
  if [ "$1" = before ]; then echo "-pid $BASE_PID"; else proxy_pid "$1"; fi
}

# start_udp_proxies starts the unshaped sockshaper and Dante (no microsocks: it
# has no UDP ASSOCIATE).
start_udp_proxies() {
  if [ "$SOCKSHAPER_OK" = 1 ]; then
    start_sockshaper "$WORK/unshaped.yaml"
    SS_MAIN_PID=$SS_PID SS_MAIN_ADDR=$SS_ADDR
  fi
  danted -f "$WORK/danted.conf" >>"$WORK/danted.out" 2>&1 &
  DANTE_PID=$!
  STARTED+=("$DANTE_PID")
  wait_port "$DANTE_PORT"
}

# record FIGURE PROXY JSON JQ-EXPR appends the value to the results.
record() {
  local v
  v=$(jq -r "$4 // empty" <<<"$3")
  [ -n "$v" ] && printf '%s\t%s\t%s\n' "$1" "$2" "$v" >>"$WORK/results.tsv"
  return 0
}

# udp_run FIGURE PROXY CONNS WINDOW runs the udp scenario once and records it.
udp_run() {
  local fig=$1 p=$2 j conn pid
  read -ra conn <<<"$(udp_conn "$p")"
  read -ra pid <<<"$(udp_pid "$p")"
  j=$(bench udp "${conn[@]}" "${pid[@]}" -conns "$3" -window "$4" -size "$SIZE" -duration "$DUR")
  record "rate$fig" "$p" "$j" .datagrams_per_second
  record "p50$fig" "$p" "$j" .round_trip.p50_ms
  record "p99$fig" "$p" "$j" .round_trip.p99_ms
  record "cpu$fig" "$p" "$j" .proxy_cpu_seconds_per_million
  record "lost" "$p" "$j" .lost
  record "sent" "$p" "$j" .sent
  record "err" "$p" "$j" .errors
  [ "$j" = '{}' ] && printf 'err\t%s\t1\n' "$p" >>"$WORK/results.tsv"
  return 0
}

# cell FIGURE PROXY prints "median (min–max)" of the rounds, or "-".
cell() {
  local vals m lo hi n
  vals=$(awk -F'\t' -v f="$1" -v p="$2" '$1==f && $2==p {print $3}' "$WORK/results.tsv" | sort -g)
  [ -z "$vals" ] && { echo "-"; return; }
  m=$(median <<<"$vals"); lo=$(head -1 <<<"$vals"); hi=$(tail -1 <<<"$vals"); n=$(wc -l <<<"$vals")
  if [ "$n" -gt 1 ]; then echo "$(num "$m") ($(num "$lo")–$(num "$hi"))"; else num "$m"; fi
}

# sum FIGURE PROXY prints the sum over the runs, or "-".
sum() {
  awk -F'\t' -v f="$1" -v p="$2" '$1==f && $2==p {s+=$3; n++} END {print n ? s : "-"}' "$WORK/results.tsv"
}

# ratio FIGURE prints sockshaper's median over Dante's.
ratio() {
  local a b
  a=$(awk -F'\t' -v f="$1" '$1==f && $2=="sockshaper" {print $3}' "$WORK/results.tsv" | median)
  b=$(awk -F'\t' -v f="$1" '$1==f && $2=="dante" {print $3}' "$WORK/results.tsv" | median)
  awk -v a="$a" -v b="$b" 'BEGIN {if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f×", a / b}'
}

report() {
  local rows=(
    "rate1|datagrams/s, 1 association, $WINDOW in flight" "rate16|datagrams/s, 16 associations, $WINDOW in flight each"
    "cpu1|proxy CPU, 1 association (s per million datagrams)" "cpu16|proxy CPU, 16 associations (s per million datagrams)"
    "p99w16|round trip p99 with $WINDOW in flight, 16 associations (ms)"
    "p50l1|round trip p50, 1 association, 1 in flight (ms)" "p99l1|round trip p99, 1 association, 1 in flight (ms)"
    "p50l16|round trip p50, 16 associations, 1 in flight each (ms)" "p99l16|round trip p99, 16 associations, 1 in flight each (ms)"
    "ratel16|datagrams/s, 16 associations, 1 in flight each")
  local cols=(direct sockshaper dante) row c
  [ -n "$BASE_PID" ] && cols=(direct before sockshaper dante)
  if [ -n "$BASE_PID" ]; then
    echo "| figure ($SIZE-byte datagrams) | direct | before ($BASELINE) | sockshaper | Dante | sockshaper / Dante |"
    echo "| --- | --- | --- | --- | --- | --- |"
  else
    echo "| figure ($SIZE-byte datagrams) | direct | sockshaper | Dante | sockshaper / Dante |"
    echo "| --- | --- | --- | --- | --- |"
  fi
  for row in "${rows[@]}"; do
    printf '| %s |' "${row#*|}"
    for c in "${cols[@]}"; do printf ' %s |' "$(cell "${row%%|*}" "$c")"; done
    printf ' %s |\n' "$(ratio "${row%%|*}")"
  done
  printf '| datagrams lost / sent (sum of runs) |'
  for c in "${cols[@]}"; do printf ' %s / %s |' "$(sum lost "$c")" "$(sum sent "$c")"; done
  echo " |"
  printf '| failed runs and association errors (sum) |'
  for c in "${cols[@]}"; do printf ' %s |' "$(sum err "$c")"; done
  echo " |"
}

# direct_ratios prints, for the rate figures, each sockshaper build's median
# rate over the direct path's median: the issue's measure (goal ≥ 0.6×).
direct_ratios() {
  local fig p a d
  for p in before sockshaper; do
    grep -q "	$p	" "$WORK/results.tsv" || continue
    printf '%s over direct, datagrams/s:' "$p"
    for fig in rate1 rate16 ratel16; do
      a=$(awk -F'\t' -v f="$fig" -v p="$p" '$1==f && $2==p {print $3}' "$WORK/results.tsv" | median)
      d=$(awk -F'\t' -v f="$fig" '$1==f && $2=="direct" {print $3}' "$WORK/results.tsv" | median)
      awk -v f="$fig" -v a="$a" -v d="$d" 'BEGIN {if (a != "-" && d != "-" && d > 0) printf " %s %.2f×", f, a / d}'
    done
    echo
  done
}

main() {
  bench_init
  local t0=$SECONDS
  need_packages danted:dante-server jq:jq
  build_tools
  setup_proxies
  [ -n "$BASELINE" ] && [ "$SOCKSHAPER_OK" = 1 ] && build_baseline
  start_udp_proxies
  [ -n "$BASELINE" ] && [ "$SOCKSHAPER_OK" = 1 ] && start_baseline
  : >"$WORK/results.tsv"
  local r p names
  names=$(udp_names)
  for p in $names; do bench udp $(udp_conn "$p") -conns 4 -duration 500ms >/dev/null; done # warm-up
  for r in $(seq "$ROUNDS"); do
    log "round $r of $ROUNDS"
    for p in $names; do udp_run 1 "$p" 1 "$WINDOW"; done
    for p in $names; do udp_run 16 "$p" 16 "$WINDOW"; done
    for p in $names; do udp_run l1 "$p" 1 1; done
    for p in $names; do udp_run l16 "$p" 16 1; done
  done
  # The window-32 runs record their round trips under "p99<N>"; name the one shown.
  awk -F'\t' 'BEGIN {OFS="\t"} $1=="p9916" {$1="p99w16"} {print}' "$WORK/results.tsv" >"$WORK/results.tmp"
  mv "$WORK/results.tmp" "$WORK/results.tsv"
  log "done in $((SECONDS - t0)) s"
  echo "sockbench udp: $ROUNDS round(s) of $DUR runs; $(nproc) cores," \
    "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), Linux $(uname -r), $(date -u +%F)"
  echo
  report
  echo
  direct_ratios
}

main
