#!/usr/bin/env bash
# compare.sh: sockshaper against Dante, microsocks, the bare armon/go-socks5
# library (bench/armonpeer) and the direct path (the ceiling), all on
# 127.0.0.1, measured with bench/sockbench.
#
# Figures: download over 1 and 8 connections, upload over 1, 64-byte latency,
# session churn with 16 clients, memory per idle session, and the proxy's CPU
# seconds per GiB relayed; then sockshaper's CPU per GiB for a download shaped
# to 50 MiB/s against the same rate paced by the client and by the source
# (unshaped relay). Churn runs wait until earlier runs' TIME_WAIT sockets expire.
# Runs are interleaved across proxies (A B C A B C ...) for -rounds rounds; the
# table shows the median, with the range of the rounds in brackets.
#
# usage: bench/compare.sh [-rounds N] [-quick] [-keep]
#   -rounds N  rounds (default 3, about 10 minutes); -quick: 1 round of short
#              runs (about 3 minutes, most of it waiting out TIME_WAIT)
#   -keep      keep the work directory (configs, logs, every JSON result)
# Environment: TW_MAX (default 1000), the TIME_WAIT sockets a churn run waits
# (up to 65 s) to fall below (see bench/churn.sh).
# Needs root to install dante-server and microsocks and to create the system user
# Dante authenticates (sockbench, removed again at exit if this run made it).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/proxies.sh"

# Idle sessions cost descriptors: two each here (client and target side) and two
# or more in the proxy, under a hard RLIMIT_NOFILE that may be 20000 and need
# CAP_SYS_RESOURCE to raise; 5000 sessions fit it at two per session.
ROUNDS=3 DUR=3s LAT=2s CHURN=2s IDLE=5000 CPU_DUR=4s SHAPED_RATE=50MiB TW_MAX=${TW_MAX:-1000}
while [ $# -gt 0 ]; do
  case $1 in
    -rounds) ROUNDS=$2; shift ;;
    -quick) ROUNDS=1 DUR=1s LAT=1s CHURN=1s IDLE=1000 CPU_DUR=2s ;;
    -keep) KEEP_WORK=1 ;;
    *) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
  esac
  shift
done
[[ $ROUNDS =~ ^[1-9][0-9]?$ ]] || die "-rounds: want 1 to 99"

# record FIGURE PROXY JSON JQ-EXPR appends the value to the results.
record() {
  local v
  v=$(jq -r "$4 // empty" <<<"$3")
  [ -n "$v" ] && printf '%s\t%s\t%s\n' "$1" "$2" "$v" >>"$WORK/results.tsv"
  return 0
}

# figures PROXY runs every figure but the idle one on PROXY once.
figures() {
  local p=$1 j conn pid
  read -ra conn <<<"$(proxy_conn "$p")"
  read -ra pid <<<"$(proxy_pid "$p")"
  j=$(bench download "${conn[@]}" "${pid[@]}" -conns 1 -duration "$DUR")
  record dl1 "$p" "$j" .total_mibps; record cpu1 "$p" "$j" .proxy_cpu_seconds_per_gib; record err "$p" "$j" .errors
  j=$(bench download "${conn[@]}" "${pid[@]}" -conns 8 -duration "$DUR")
  record dl8 "$p" "$j" .total_mibps; record cv8 "$p" "$j" .cv
  record cpu8 "$p" "$j" .proxy_cpu_seconds_per_gib; record err "$p" "$j" .errors
  j=$(bench upload "${conn[@]}" "${pid[@]}" -conns 1 -duration "$DUR")
  record up1 "$p" "$j" .total_mibps; record cpuup "$p" "$j" .proxy_cpu_seconds_per_gib; record err "$p" "$j" .errors
  j=$(bench latency "${conn[@]}" -duration "$LAT")
  record lat50 "$p" "$j" .round_trip.p50_ms; record lat99 "$p" "$j" .round_trip.p99_ms; record err "$p" "$j" .errors
}

# churn PROXY measures session churn on PROXY, once the TIME_WAIT sockets of
# earlier runs are gone: every churn run leaves one or two per session for 60 s,
# and a crowded ephemeral port range slows the connects of whoever runs next.
churn() {
  local p=$1 j conn
  read -ra conn <<<"$(proxy_conn "$p")"
  wait_timewait
  j=$(bench churn "${conn[@]}" -conns 16 -duration "$CHURN")
  record churn "$p" "$j" .sessions_per_second; record err "$p" "$j" .errors
}

# wait_timewait waits (at most 65 s, TIME_WAIT's 60 s and a margin) until at most
# TW_MAX TCP sockets are in TIME_WAIT.
wait_timewait() {
  local start=$SECONDS n
  while n=$(ss -Htan state time-wait | wc -l) && [ "$n" -gt "$TW_MAX" ] && [ $((SECONDS - start)) -lt 65 ]; do
    sleep 1
  done
  [ $((SECONDS - start)) -gt 0 ] && log "waited $((SECONDS - start)) s for TIME_WAIT sockets to expire ($n left)"
  return 0
}

# idle PROXY measures memory per idle session on PROXY.
idle() {
  local j conn pid
  read -ra conn <<<"$(proxy_conn "$1")"
  read -ra pid <<<"$(proxy_pid "$1")"
  j=$(bench idle "${conn[@]}" "${pid[@]}" -sessions "$IDLE" -hold 1s)
  record rss "$1" "$j" .rss_kib_per_session; record pss "$1" "$j" .pss_kib_per_session
  record fds "$1" "$j" .fds_per_session; record err "$1" "$j" .errors
}

# shaped_cpu compares sockshaper's CPU per GiB at SHAPED_RATE: shaped by the
# proxy, and unshaped but paced by the client.
shaped_cpu() {
  local j conn
  read -ra conn <<<"$(proxy_conn sockshaper)"
  j=$(bench download -proxy "$SHAPED_ADDR" -users bench -password "$BENCH_PASS" -pid "$SHAPED_PID" -duration "$CPU_DUR")
  record shaped_rate sockshaper "$j" .total_mibps; record shaped_cpu sockshaper "$j" .proxy_cpu_seconds_per_gib
  j=$(bench download "${conn[@]}" -pid "$SS_MAIN_PID" -client-rate "$SHAPED_RATE" -duration "$CPU_DUR")
  record paced_rate sockshaper "$j" .total_mibps; record paced_cpu sockshaper "$j" .proxy_cpu_seconds_per_gib
  j=$(bench download "${conn[@]}" -pid "$SS_MAIN_PID" -source-rate "$SHAPED_RATE" -duration "$CPU_DUR")
  record source_rate sockshaper "$j" .total_mibps; record source_cpu sockshaper "$j" .proxy_cpu_seconds_per_gib
}

# shaped_idle measures memory and descriptors per idle session of the shaped
# sockshaper, whose relay copies through buffers instead of splice pipes.
shaped_idle() {
  local j
  j=$(bench idle -proxy "$SHAPED_ADDR" -users bench -password "$BENCH_PASS" -pid "$SHAPED_PID" -sessions "$IDLE" -hold 1s)
  record shaped_rss sockshaper "$j" .rss_kib_per_session; record shaped_fds sockshaper "$j" .fds_per_session
}

# cell FIGURE PROXY prints "median (min–max)" of the rounds, or "-".
cell() {
  local vals
  vals=$(awk -F'\t' -v f="$1" -v p="$2" '$1==f && $2==p {print $3}' "$WORK/results.tsv" | sort -g)
  [ -z "$vals" ] && { echo "-"; return; }
  local m lo hi n
  m=$(median <<<"$vals"); lo=$(head -1 <<<"$vals"); hi=$(tail -1 <<<"$vals"); n=$(wc -l <<<"$vals")
  if [ "$n" -gt 1 ]; then echo "$(num "$m") ($(num "$lo")–$(num "$hi"))"; else num "$m"; fi
}

report() {
  local rows=(
    "dl1|download, 1 conn (MiB/s)" "dl8|download, 8 conns (MiB/s)" "cv8|download, 8 conns: CV across conns"
    "up1|upload, 1 conn (MiB/s)" "lat50|latency p50, 64 B (ms)" "lat99|latency p99, 64 B (ms)"
    "churn|churn, 16 clients (sessions/s)" "rss|idle: RSS per session (KiB)" "pss|idle: PSS per session (KiB)"
    "fds|idle: descriptors per session"
    "cpu1|proxy CPU, download 1 conn (s/GiB)" "cpu8|proxy CPU, download 8 conns (s/GiB)"
    "cpuup|proxy CPU, upload 1 conn (s/GiB)" "err|session errors (sum of runs)")
  local cols=(direct sockshaper dante microsocks armon) row c
  echo "| figure | direct | sockshaper | Dante | microsocks | armon/go-socks5 |"
  echo "| --- | --- | --- | --- | --- | --- |"
  for row in "${rows[@]}"; do
    printf '| %s |' "${row#*|}"
    for c in "${cols[@]}"; do
      if [ "${row%%|*}" = err ]; then
        printf ' %s |' "$(awk -F'\t' -v p="$c" '$1=="err" && $2==p {s+=$3; n++} END {print n ? s : "-"}' "$WORK/results.tsv")"
      else
        printf ' %s |' "$(cell "${row%%|*}" "$c")"
      fi
    done
    echo
  done
  echo
  echo "sockshaper shaped against unshaped: download over 1 connection at $SHAPED_RATE/s, and $IDLE idle sessions:"
  echo
  echo "| relay | achieved (MiB/s) | proxy CPU (s/GiB) | idle RSS per session (KiB) | idle descriptors per session |"
  echo "| --- | --- | --- | --- | --- |"
  echo "| shaped by sockshaper (group limit $SHAPED_RATE) | $(cell shaped_rate sockshaper) | $(cell shaped_cpu sockshaper) | $(cell shaped_rss sockshaper) | $(cell shaped_fds sockshaper) |"
  echo "| unshaped, paced by the client | $(cell paced_rate sockshaper) | $(cell paced_cpu sockshaper) | | |"
  echo "| unshaped, paced by the source | $(cell source_rate sockshaper) | $(cell source_cpu sockshaper) | | |"
  echo "| unshaped, full speed | $(cell dl1 sockshaper) | $(cell cpu1 sockshaper) | $(cell rss sockshaper) | $(cell fds sockshaper) |"
}

main() {
  bench_init
  local t0=$SECONDS
  need_packages danted:dante-server microsocks:microsocks jq:jq
  raise_nofile $((8 * IDLE + 4096))
  log "descriptor limit $(ulimit -n)"
  build_tools
  setup_proxies
  : >"$WORK/results.tsv"
  local r p names
  names=$(proxy_names)
  for r in $(seq "$ROUNDS"); do
    log "round $r of $ROUNDS: restarting proxies"
    restart_proxies
    for p in $names; do warm "$p"; done
    for p in $names; do [ "$p" = direct ] || idle "$p"; done
    [ "$SOCKSHAPER_OK" = 1 ] && shaped_idle
    for p in $names; do figures "$p"; done
    [ "$SOCKSHAPER_OK" = 1 ] && shaped_cpu
    for p in $names; do churn "$p"; done
  done
  log "done in $((SECONDS - t0)) s"
  echo "sockbench compare: $ROUNDS round(s), transfers $DUR, latency $LAT, churn $CHURN, idle $IDLE sessions;" \
    "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), Linux $(uname -r), $(date -u +%F)"
  echo
  report
}

main
