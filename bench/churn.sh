#!/usr/bin/env bash
# churn.sh: the standing guard of session churn (issue 24): sockshaper against
# the bare armon/go-socks5 library (bench/armonpeer) and microsocks over
# SOCKS5, and with -http its HTTP front's tunnels against Squid and tinyproxy,
# each with 16 and with 64 clients looping whole sessions for -duration:
# greeting, RFC 1929 login, CONNECT, 64 bytes and their echo, close (on the HTTP
# front: CONNECT with Basic credentials, 64 bytes, close).
#
# sockshaper runs as a campus runs it: a bcrypt users file (verified logins
# cached), one JSON accounting line per session to an -access-log file, its
# metrics served on an admin listener, no shaping group (unshaped); nothing is
# switched off. armon/go-socks5 has plaintext credentials and nothing else;
# microsocks -u/-P; Squid its basic_ncsa_auth helper (credentials cached);
# tinyproxy its BasicAuth. Runs are interleaved (A B C A B C ...) for -rounds
# rounds, each after earlier runs' TIME_WAIT sockets expired (a crowded
# ephemeral port range slows whoever connects next). The tables show sessions/s
# and the proxy's CPU per session (median, with the range of the rounds), and
# sockshaper's rate over each peer's, paired within a round (median and range
# of the rounds), against the target of 1.1×. It exits 0 whether or not the
# targets are met.
#
# usage: bench/churn.sh [-rounds N] [-duration D] [-conns "16 64"] [-http]
#                       [-before REV] [-quick] [-keep]
#   -rounds N    rounds (default 3; about 7 minutes a round, 10 with -http,
#                most of it waiting out TIME_WAIT)
#   -duration D  length of each run (default 2s)
#   -conns LIST  client counts (default "16 64")
#   -http        also the HTTP front against Squid and tinyproxy
#   -before REV  also sockshaper built at git revision REV of this repository
#                ("before"), interleaved with the others
#   -quick       1 round of 1 s runs
#   -keep        keep the work directory (configs, logs, every JSON result)
# Environment: TW_MAX (default 1000), the TIME_WAIT sockets each run waits
# (up to 65 s) to fall below; raise it on a machine others use, whose TIME_WAIT
# sockets would make every run wait the whole 65 s.
# Needs root to install microsocks (and squid and tinyproxy for -http).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/httppeers.sh"

BENCH_PASS=${BENCH_PASS:-bench-pass-7}
ROUNDS=3 DUR=2s CONNS="16 64" HTTP=0 BEFORE="" TW_MAX=${TW_MAX:-1000} TARGET=1.1
while [ $# -gt 0 ]; do
  case $1 in
    -rounds) ROUNDS=$2; shift ;;
    -duration) DUR=$2; shift ;;
    -conns) CONNS=$2; shift ;;
    -http) HTTP=1 ;;
    -before) BEFORE=$2; shift ;;
    -quick) ROUNDS=1 DUR=1s ;;
    -keep) KEEP_WORK=1 ;;
    *) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
  esac
  shift
done
[[ $ROUNDS =~ ^[1-9][0-9]?$ ]] || die "-rounds: want 1 to 99"
SS_NOW_PID="" SS_NOW_ADDR="" SS_OLD_PID="" SS_OLD_ADDR="" MS_PID="" MS_PORT="" ARMON_PID="" ARMON_ADDR=""

# socks_names and http_names print the proxies of each front, sockshaper first.
socks_names() {
  echo sockshaper
  [ -n "$BEFORE" ] && echo before
  echo armon microsocks
}
http_names() {
  echo sockshaper
  [ -n "$BEFORE" ] && echo before
  echo squid tinyproxy
}

# proxy_conn FRONT NAME prints the sockbench flags that reach NAME's FRONT
# (socks or http).
proxy_conn() {
  local flag=""
  [ "$1" = http ] && flag=-http
  case $2 in
    sockshaper) echo "$flag -proxy $SS_NOW_ADDR -users bench -password $BENCH_PASS -pid $SS_NOW_PID" ;;
    before) echo "$flag -proxy $SS_OLD_ADDR -users bench -password $BENCH_PASS -pid $SS_OLD_PID" ;;
    armon) echo "-proxy $ARMON_ADDR -users bench -password $BENCH_PASS -pid $ARMON_PID" ;;
    microsocks) echo "-proxy 127.0.0.1:$MS_PORT -users bench -password $BENCH_PASS -pid $MS_PID" ;;
    squid) echo "-http -proxy 127.0.0.1:$SQUID_PORT -users bench -password $BENCH_PASS -pid $SQUID_PID" ;;
    tinyproxy) echo "-http -proxy 127.0.0.1:$TP_PORT -users bench -password $BENCH_PASS -pid $TP_PID" ;;
  esac
}

# setup writes the configs and the users file.
setup() {
  MS_PORT=$(free_port)
  make_users "$WORK/users.htpasswd" bench
  cat >"$WORK/sockshaper.yaml" <<EOF
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:$(free_port)
auth: {users_file: $WORK/users.htpasswd}
access: {client_networks: [127.0.0.0/8], deny_destinations: [private, link-local, metadata]}
limits: {max_sessions: 20000, max_sessions_per_client_ip: 20000, max_sessions_per_user: 20000}
shaping: {default_group: "", groups: {}, global: {upload: 0, download: 0}}
EOF
  sed "s/^admin_listen: .*/admin_listen: 127.0.0.1:$(free_port)/" "$WORK/sockshaper.yaml" >"$WORK/before.yaml"
  (cd "$BENCH_ROOT" && go build -o "$WORK/armonpeer" ./bench/armonpeer) || die "bench/armonpeer does not build"
  [ "$HTTP" = 1 ] && http_peers_setup
  return 0
}

# restart stops every proxy and starts it anew, so that each round starts from
# fresh processes.
restart() {
  local p
  for p in $SS_NOW_PID $SS_OLD_PID $MS_PID $ARMON_PID; do
    stop_pid "$p"
    forget_pid "$p"
  done
  SS_BIN="$WORK/sockshaper" start_sockshaper "$WORK/sockshaper.yaml" -access-log "$WORK/access.log"
  SS_NOW_PID=$SS_PID SS_NOW_ADDR=$SS_ADDR
  if [ -n "$BEFORE" ]; then
    SS_BIN="$WORK/sockshaper-before" start_sockshaper "$WORK/before.yaml" -access-log "$WORK/access-before.log"
    SS_OLD_PID=$SS_PID SS_OLD_ADDR=$SS_ADDR
  fi
  microsocks -i 127.0.0.1 -p "$MS_PORT" -u bench -P "$BENCH_PASS" >>"$WORK/microsocks.out" 2>&1 &
  MS_PID=$!
  STARTED+=("$MS_PID")
  BENCH_SYSUSER=bench start_armon
  wait_port "$MS_PORT"
  [ "$HTTP" = 1 ] && http_peers_restart
  return 0
}

# start_armon starts bench/armonpeer for user $BENCH_SYSUSER and sets
# ARMON_PID and ARMON_ADDR.
start_armon() {
  local out="$WORK/armonpeer.$RANDOM.out"
  "$WORK/armonpeer" -listen 127.0.0.1:0 -user "$BENCH_SYSUSER" -password "$BENCH_PASS" >"$out" 2>&1 &
  ARMON_PID=$!
  STARTED+=("$ARMON_PID")
  for _ in $(seq 100); do
    ARMON_ADDR=$(awk '$1=="serving" {print $2; exit}' "$out")
    [ -n "$ARMON_ADDR" ] && return 0
    running "$ARMON_PID" || break
    sleep 0.1
  done
  cat "$out" >&2
  die "armonpeer did not start"
}

# warm runs short sessions through a proxy, so that logins are cached and lazily
# started workers exist before anything is measured.
warm() {
  local conn
  read -ra conn <<<"$(proxy_conn "$1" "$2")"
  bench churn "${conn[@]}" -conns 4 -duration 300ms >/dev/null
}

# churn FRONT NAME CONNS runs one churn run and records its rate and CPU.
churn() {
  local j conn fig="$1$3"
  read -ra conn <<<"$(proxy_conn "$1" "$2")"
  settle_timewait "$TW_MAX"
  j=$(bench churn "${conn[@]}" -conns "$3" -duration "$DUR")
  record "$fig" "$2" "$j" .sessions_per_second
  record "cpu$fig" "$2" "$j" .proxy_cpu_us_per_session
  record "err$fig" "$2" "$j" .errors
}

# record FIGURE PROXY JSON JQ-EXPR appends the value, with the round.
record() {
  local v
  v=$(jq -r "$4 // empty" <<<"$3")
  [ -n "$v" ] && printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$v" "$ROUND" >>"$WORK/results.tsv"
  return 0
}

# cell FIGURE PROXY prints "median (min–max)" of the rounds, or "-".
cell() {
  local vals m lo hi
  vals=$(awk -F'\t' -v f="$1" -v p="$2" '$1==f && $2==p {print $3}' "$WORK/results.tsv" | sort -g)
  [ -z "$vals" ] && { echo "-"; return; }
  m=$(median <<<"$vals"); lo=$(head -1 <<<"$vals"); hi=$(tail -1 <<<"$vals")
  if [ "$(wc -l <<<"$vals")" -gt 1 ]; then echo "$(num "$m") ($(num "$lo")–$(num "$hi"))"; else num "$m"; fi
}

# errors FIGURE PROXY prints the sum of the session errors of the rounds.
errors() {
  awk -F'\t' -v f="err$1" -v p="$2" '$1==f && $2==p {s+=$3; n++} END {print n ? s : "-"}' "$WORK/results.tsv"
}

# table FRONT TITLE NAMES... prints one front's rates, CPU and ratios.
table() {
  local front=$1 title=$2 c p
  shift 2
  echo "$title"
  echo
  echo "| clients | proxy | sessions/s | proxy CPU per session (µs) | errors | sockshaper / this proxy | ≥ $TARGET× |"
  echo "| --- | --- | --- | --- | --- | --- | --- |"
  for c in $CONNS; do
    for p in "$@"; do
      if [ "$p" = sockshaper ]; then
        printf '| %s | %s | %s | %s | %s | | |\n' "$c" "$p" "$(cell "$front$c" "$p")" "$(cell "cpu$front$c" "$p")" "$(errors "$front$c" "$p")"
      else
        printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$c" "$p" "$(cell "$front$c" "$p")" "$(cell "cpu$front$c" "$p")" \
          "$(errors "$front$c" "$p")" "$(ratio_cell "$WORK/results.tsv" "$front$c" sockshaper "$p")" \
          "$(if [ "$p" = before ]; then echo "(before/after)"; else verdict "$WORK/results.tsv" "$front$c" sockshaper "$p" "$TARGET"; fi)"
      fi
    done
  done
  echo
}

main() {
  bench_init
  local t0=$SECONDS front p c names start_load
  local pkgs=(microsocks:microsocks jq:jq)
  [ "$HTTP" = 1 ] && pkgs+=(squid:squid tinyproxy:tinyproxy openssl:openssl)
  need_packages "${pkgs[@]}"
  raise_nofile 65536
  build_tools
  [ "$SOCKSHAPER_OK" = 1 ] || die "sockshaper does not build"
  [ -n "$BEFORE" ] && build_before "$BEFORE"
  setup
  : >"$WORK/results.tsv"
  start_load=$(load_note)
  local fronts=socks
  [ "$HTTP" = 1 ] && fronts="socks http"
  for ROUND in $(seq "$ROUNDS"); do
    log "round $ROUND of $ROUNDS: restarting proxies ($(load_note))"
    restart
    for front in $fronts; do
      names=$(socks_names)
      [ "$front" = http ] && names=$(http_names)
      for p in $names; do warm "$front" "$p"; done
      for c in $CONNS; do
        for p in $names; do churn "$front" "$p" "$c"; done
      done
    done
  done
  log "done in $((SECONDS - t0)) s"
  echo "sockbench churn: $ROUNDS round(s) of $DUR runs, clients $CONNS; $(nproc) cores," \
    "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), Linux $(uname -r), $(date -u +%F);" \
    "$start_load, $(load_note) at the end; sockshaper $(git -C "$BENCH_ROOT" describe --always --dirty 2>/dev/null || echo "?")${BEFORE:+, before: $BEFORE}"
  echo
  # shellcheck disable=SC2046  # the names are words
  table socks "SOCKS5 (greeting, login, CONNECT, 64 B echo, close):" $(socks_names)
  # shellcheck disable=SC2046
  [ "$HTTP" = 1 ] && table http "HTTP front tunnels (CONNECT with Basic, 64 B echo, close):" $(http_names)
  return 0
}

main
