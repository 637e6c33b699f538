#!/usr/bin/env bash
# tls.sh: sockshaper's HTTPS listener (HTTP/1.1 CONNECT inside TLS, and CONNECT
# streams on HTTP/2) against Squid's https_port, with sockshaper's plain-text
# HTTP front for reference, all on 127.0.0.1, measured with bench/sockbench.
#
# Figures: CONNECT download over 1 and 8 TLS connections; tunnel churn (TCP
# connect, TLS handshake, CONNECT, 64 B echo, close) with 16 clients, once with
# a full handshake per tunnel (X25519 alone, and the browsers' offer with
# X25519MLKEM768 first) and once with TLS session resumption (a client
# session cache; the table says how many handshakes resumed), with the
# proxy's CPU per tunnel; 100 concurrent
# download tunnels — on ONE HTTP/2 connection for sockshaper-h2, on 100
# HTTP/1.1 TLS connections for the others (Squid speaks no HTTP/2 to its
# clients) — with the proxy's CPU seconds per GiB and RSS growth per tunnel;
# and 1,000 idle tunnels' RSS per tunnel. Both proxies present the same
# certificate and ask for the same Basic login (bench/tlspeers.sh says how).
# Runs are interleaved across proxies (A B C A B C ...) for -rounds rounds,
# each round on freshly started proxies; the table shows the median with the
# range of the rounds in brackets. It always exits 0 once the table is
# printed: goals are read from the table, not the exit status.
#
# usage: bench/tls.sh [-rounds N] [-quick] [-keep]
#   -rounds N  rounds (default 3, about 15 minutes, much of it waiting out
#              TIME_WAIT); -quick: 1 round of short runs
#   -keep      keep the work directory (configs, logs, every JSON result)
# Environment: TW_MAX (default 1000), the TIME_WAIT sockets a churn run waits
# (up to 65 s) to fall below (see bench/churn.sh).
# Needs root to install squid-openssl.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/tlspeers.sh"

ROUNDS=3 DUR=3s CHURN=2s IDLE=1000 TW_MAX=${TW_MAX:-1000} J=""
while [ $# -gt 0 ]; do
  case $1 in
    -rounds) ROUNDS=$2; shift ;;
    -quick) ROUNDS=1 DUR=1s CHURN=1s IDLE=300 ;;
    -keep) KEEP_WORK=1 ;;
    *) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
  esac
  shift
done
[[ $ROUNDS =~ ^[1-9][0-9]?$ ]] || die "-rounds: want 1 to 99"

# record FIGURE PROXY JSON JQ appends JQ's value of JSON to the results.
record() {
  local v
  v=$(jq -r "$4 // empty" <<<"$3")
  [ -n "$v" ] && printf '%s\t%s\t%s\n' "$1" "$2" "$v" >>"$WORK/results.tsv"
  return 0
}

# conn_of NAME sets the array CONN to NAME's sockbench flags and PID to its
# -pid flag.
conn_of() {
  read -ra CONN <<<"$(tls_conn "$1")"
  read -ra PID <<<"$(tls_pid "$1")"
}

warm() {
  conn_of "$1"
  bench churn "${CONN[@]}" -conns 4 -duration 300ms >/dev/null
  bench download "${CONN[@]}" -conns 2 -duration 300ms >/dev/null
}

# downloads NAME: 1 and 8 connections (sockshaper-h2: 8 streams on one
# connection stand in for the 8 connections, and are not in the table).
downloads() {
  local p=$1 j n
  conn_of "$p"
  for n in 1 8; do
    j=$(bench download "${CONN[@]}" "${PID[@]}" -conns "$n" -duration "$DUR")
    record "dl$n" "$p" "$j" .total_mibps; record "cpu$n" "$p" "$j" .proxy_cpu_seconds_per_gib
    record err "$p" "$j" .errors
  done
}

# hundred NAME: 100 concurrent download tunnels.
hundred() {
  local p=$1 j
  conn_of "$p"
  j=$(bench download "${CONN[@]}" "${PID[@]}" -conns 100 -duration "$DUR")
  record dl100 "$p" "$j" .total_mibps; record cpu100 "$p" "$j" .proxy_cpu_seconds_per_gib
  record rss100 "$p" "$j" .proxy_rss_kib_per_conn; record err "$p" "$j" .errors
}

# churns NAME: tunnel churn with full handshakes (X25519 offered alone, so
# that both proxies agree on the same key exchange; then Go's default offer,
# X25519MLKEM768 first, as current browsers send it: sockshaper takes the
# hybrid, Squid on OpenSSL 3.0 falls back to X25519), and with resumption.
churns() {
  local p=$1 j
  conn_of "$p"
  churn_run "$p" churn -kex x25519
  [ "$p" = sockshaper-plain ] && return 0 # no TLS, no handshakes
  churn_run "$p" churnpq
  churn_run "$p" churnr -kex x25519 -resume
  record resumed "$p" "$J" '(if .tls.handshakes > 0 then 100 * .tls.resumed / .tls.handshakes else null end)'
}

# churn_run NAME FIGURE FLAGS... runs one churn after TIME_WAIT settles and
# records its rate and CPU per session; the JSON is left in J.
churn_run() {
  local p=$1 f=$2 extra=()
  shift 2
  [ "$p" = sockshaper-plain ] || extra=("$@")
  settle_timewait "$TW_MAX"
  local pid=() help
  # churn -pid (the proxy's CPU per session) comes with h-perf's sockbench.
  help=$("$WORK/sockbench" churn -h 2>&1 || true)
  [[ $help == *"-pid"* ]] && pid=("${PID[@]}")
  J=$(bench churn "${CONN[@]}" "${pid[@]}" "${extra[@]}" -conns 16 -duration "$CHURN")
  record "$f" "$p" "$J" .sessions_per_second; record "${f}cpu" "$p" "$J" '(if .proxy_cpu_us_per_session then .proxy_cpu_us_per_session / 1000 else null end)'
  record err "$p" "$J" .errors
}

# idle NAME: RSS per idle tunnel, on freshly started proxies: the three
# sockshaper columns share one process, whose heap an earlier run would have
# grown already.
idle() {
  local p=$1 j
  restart_tls_proxies
  conn_of "$p"
  j=$(bench idle "${CONN[@]}" "${PID[@]}" -sessions "$IDLE" -hold 1s)
  record idle "$p" "$j" .rss_kib_per_session; record err "$p" "$j" .errors
}

cell() {
  local vals m lo hi n
  vals=$(awk -F'\t' -v f="$1" -v p="$2" '$1==f && $2==p {print $3}' "$WORK/results.tsv" | sort -g)
  [ -z "$vals" ] && { echo "-"; return; }
  m=$(median <<<"$vals"); lo=$(head -1 <<<"$vals"); hi=$(tail -1 <<<"$vals"); n=$(wc -l <<<"$vals")
  if [ "$n" -gt 1 ]; then echo "$(num "$m") ($(num "$lo")–$(num "$hi"))"; else num "$m"; fi
}

report() {
  local rows=(
    "dl1|CONNECT download, 1 conn (MiB/s)" "cpu1|proxy CPU, download 1 conn (s/GiB)"
    "dl8|CONNECT download, 8 conns (MiB/s)" "cpu8|proxy CPU, download 8 conns (s/GiB)"
    "churn|tunnel churn, full handshakes, X25519, 16 clients (sessions/s)"
    "churncpu|proxy CPU per tunnel, full handshakes, X25519 (ms)"
    "churnpq|tunnel churn, full handshakes, browser offer (X25519MLKEM768 first) (sessions/s)"
    "churnpqcpu|proxy CPU per tunnel, browser offer (ms)"
    "churnr|tunnel churn, session resumption, X25519 (sessions/s)"
    "churnrcpu|proxy CPU per tunnel, session resumption (ms)"
    "resumed|handshakes resumed in the resumption run (%)"
    "dl100|100 download tunnels (MiB/s)" "cpu100|proxy CPU, 100 tunnels (s/GiB)"
    "rss100|proxy RSS growth per busy tunnel, 100 tunnels (KiB)"
    "idle|proxy RSS per idle tunnel, $IDLE tunnels (KiB)" "err|errors (sum of runs)")
  local cols=(sockshaper-tls sockshaper-h2 squid-tls sockshaper-plain) row c
  echo "| figure | sockshaper HTTPS (h1 CONNECT in TLS) | sockshaper HTTPS, h2 streams on 1 conn | Squid $(squid -v | head -1 | awk '{print $4}') https_port | sockshaper plain HTTP (reference) |"
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
  local t0=$SECONDS r p names="sockshaper-tls sockshaper-h2 squid-tls sockshaper-plain" load0
  load0=$(cut -d' ' -f1-3 /proc/loadavg)
  need_packages squid:squid-openssl jq:jq openssl:openssl
  squid -v | grep -q -- '--with-openssl' || die "this squid has no TLS: install squid-openssl"
  raise_nofile 65536
  build_tools
  [ "$SOCKSHAPER_OK" = 1 ] || die "sockshaper does not build"
  tls_setup
  : >"$WORK/results.tsv"
  for r in $(seq "$ROUNDS"); do
    log "round $r of $ROUNDS"
    for p in $names; do idle "$p"; done
    for p in $names; do warm "$p"; done
    for p in $names; do downloads "$p"; done
    for p in $names; do hundred "$p"; done
    for p in $names; do churns "$p"; done
  done
  log "done in $((SECONDS - t0)) s"
  echo "sockbench tls: $ROUNDS round(s), transfers $DUR, churn $CHURN; $(nproc) cores," \
    "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), Linux $(uname -r), $(date -u +%F);" \
    "load average at start $load0, at end $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "sockshaper-h2: every tunnel is a stream on one HTTP/2 connection (one TLS handshake per run, so its churn rows"
  echo "are stream churn, with no handshake per tunnel); the others open one TLS connection per tunnel."
  echo
  report
}

main
