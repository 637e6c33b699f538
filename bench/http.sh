#!/usr/bin/env bash
# http.sh: sockshaper's HTTP front against Squid and tinyproxy (and the direct
# path, the ceiling), all on 127.0.0.1, measured with bench/sockbench -http.
#
# Figures: CONNECT download over 1 and 8 connections, 64-byte round trips in a
# CONNECT tunnel, tunnel churn (CONNECT, 64 B exchange, close) and request churn
# (one GET of an absolute URI per connection, Connection: close, 64-byte answer)
# with 16 clients, and the proxy's CPU seconds per GiB of a CONNECT download.
# Every proxy asks for Basic credentials: sockshaper from a bcrypt users file
# (verified logins cached), Squid through its basic_ncsa_auth helper (an MD5
# htpasswd file; credentials cached), tinyproxy from its config. Squid and
# tinyproxy run in the foreground with throwaway configs on free loopback
# ports and are stopped by pid, never as system services. Churn runs wait until
# earlier runs' TIME_WAIT sockets expire. Runs are interleaved across proxies
# (A B C A B C ...) for -rounds rounds; the table shows the median, with the
# range of the rounds in brackets.
#
# usage: bench/http.sh [-rounds N] [-quick] [-keep]
#   -rounds N  rounds (default 3, about 25 minutes, most of it waiting out
#              TIME_WAIT); -quick: 1 round of short runs
#   -keep      keep the work directory (configs, logs, every JSON result)
# Needs root to install squid and tinyproxy.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/httppeers.sh"

BENCH_PASS=${BENCH_PASS:-bench-pass-7}
ROUNDS=3 DUR=3s LAT=2s CHURN=2s CPU_DUR=3s TW_MAX=1000
while [ $# -gt 0 ]; do
  case $1 in
    -rounds) ROUNDS=$2; shift ;;
    -quick) ROUNDS=1 DUR=1s LAT=1s CHURN=1s CPU_DUR=1s ;;
    -keep) KEEP_WORK=1 ;;
    *) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
  esac
  shift
done
[[ $ROUNDS =~ ^[1-9][0-9]?$ ]] || die "-rounds: want 1 to 99"
SS_PID="" SS_ADDR=""

record() {
  local v
  v=$(jq -r "$4 // empty" <<<"$3")
  [ -n "$v" ] && printf '%s\t%s\t%s\n' "$1" "$2" "$v" >>"$WORK/results.tsv"
  return 0
}

# proxy_conn NAME prints the sockbench flags that reach NAME.
proxy_conn() {
  case $1 in
    direct) echo "-direct" ;;
    sockshaper) echo "-http -proxy $SS_ADDR -users bench -password $BENCH_PASS" ;;
    squid) echo "-http -proxy 127.0.0.1:$SQUID_PORT -users bench -password $BENCH_PASS" ;;
    tinyproxy) echo "-http -proxy 127.0.0.1:$TP_PORT -users bench -password $BENCH_PASS" ;;
  esac
}

proxy_pid() {
  case $1 in
    sockshaper) echo "-pid $SS_PID" ;;
    squid) echo "-pid $SQUID_PID" ;;
    tinyproxy) echo "-pid $TP_PID" ;;
  esac
}

setup_proxies() {
  make_users "$WORK/users.htpasswd" bench
  cat >"$WORK/sockshaper.yaml" <<EOF
listen: 127.0.0.1:0
admin_listen: ""
auth: {users_file: $WORK/users.htpasswd}
access: {client_networks: [127.0.0.0/8], deny_destinations: [private, link-local, metadata]}
limits: {max_sessions: 20000, max_sessions_per_client_ip: 20000, max_sessions_per_user: 20000}
EOF
  http_peers_setup
}

# restart_proxies starts every proxy anew for a round.
restart_proxies() {
  stop_pid "$SS_PID"
  forget_pid "$SS_PID"
  start_sockshaper "$WORK/sockshaper.yaml"
  http_peers_restart
}

warm() {
  [ "$1" = direct ] && return 0
  local conn
  read -ra conn <<<"$(proxy_conn "$1")"
  bench churn "${conn[@]}" -conns 4 -duration 300ms >/dev/null
  bench download "${conn[@]}" -conns 2 -duration 300ms >/dev/null
}

figures() {
  local p=$1 j conn pid
  read -ra conn <<<"$(proxy_conn "$p")"
  read -ra pid <<<"$(proxy_pid "$p")"
  j=$(bench download "${conn[@]}" "${pid[@]}" -conns 1 -duration "$DUR")
  record dl1 "$p" "$j" .total_mibps; record cpu1 "$p" "$j" .proxy_cpu_seconds_per_gib; record err "$p" "$j" .errors
  j=$(bench download "${conn[@]}" "${pid[@]}" -conns 8 -duration "$DUR")
  record dl8 "$p" "$j" .total_mibps; record cpu8 "$p" "$j" .proxy_cpu_seconds_per_gib; record err "$p" "$j" .errors
  j=$(bench latency "${conn[@]}" -duration "$LAT")
  record lat50 "$p" "$j" .round_trip.p50_ms; record lat99 "$p" "$j" .round_trip.p99_ms; record err "$p" "$j" .errors
}

churns() {
  local p=$1 j conn
  read -ra conn <<<"$(proxy_conn "$p")"
  settle_timewait "$TW_MAX"
  j=$(bench churn "${conn[@]}" -conns 16 -duration "$CHURN")
  record churn "$p" "$j" .sessions_per_second; record err "$p" "$j" .errors
  settle_timewait "$TW_MAX"
  j=$(bench get-churn "${conn[@]}" -conns 16 -duration "$CHURN")
  record get "$p" "$j" .sessions_per_second; record getp50 "$p" "$j" .session_time.p50_ms; record err "$p" "$j" .errors
}

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
    "dl1|CONNECT download, 1 conn (MiB/s)" "dl8|CONNECT download, 8 conns (MiB/s)"
    "lat50|latency p50 in a tunnel, 64 B (ms)" "lat99|latency p99 in a tunnel, 64 B (ms)"
    "churn|tunnel churn: CONNECT + 64 B + close, 16 clients (sessions/s)"
    "get|request churn: one GET per connection, 16 clients (requests/s)" "getp50|request churn: p50 request time (ms)"
    "cpu1|proxy CPU, download 1 conn (s/GiB)" "cpu8|proxy CPU, download 8 conns (s/GiB)" "err|errors (sum of runs)")
  local cols=(direct sockshaper squid tinyproxy) row c
  echo "| figure | direct | sockshaper (HTTP front) | Squid $(squid_version) | tinyproxy $(tinyproxy_version) |"
  echo "| --- | --- | --- | --- | --- |"
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
}

main() {
  bench_init
  local t0=$SECONDS r p names="direct sockshaper squid tinyproxy"
  need_packages squid:squid tinyproxy:tinyproxy jq:jq openssl:openssl
  raise_nofile 65536
  build_tools
  [ "$SOCKSHAPER_OK" = 1 ] || die "sockshaper does not build"
  setup_proxies
  : >"$WORK/results.tsv"
  for r in $(seq "$ROUNDS"); do
    log "round $r of $ROUNDS: restarting proxies"
    restart_proxies
    for p in $names; do warm "$p"; done
    for p in $names; do figures "$p"; done
    for p in $names; do churns "$p"; done
  done
  log "done in $((SECONDS - t0)) s"
  echo "sockbench http: $ROUNDS round(s), transfers $DUR, latency $LAT, churn $CHURN;" \
    "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), Linux $(uname -r), $(date -u +%F)"
  echo
  report
}

main
