#!/usr/bin/env bash
# fair.sh: users × sessions → rates on a saturated shared bucket (issue 20,
# finding 6), through the real sockshaper binary with bench/sockbench on 127.0.0.1.
# No user has a limit of their own; the shared bucket (the global one, or an
# app class's total) is the only limit, and every user wants more than it gives.
# Each user should get 1/k of it with k users, whatever their sessions (max-min
# fairness between users); the table gives each user's rate and its share.
#
# usage: bench/fair.sh [-duration D] [-quick] [-keep]
#   -duration D  the measured phase of each run (default 10s, after a 3 s warm-up);
#                -quick: 4s
#   -keep        keep the work directory (configs, logs, every JSON result)
#   SOCKSHAPER_TREE=DIR builds the proxy from another checkout (before/after)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

DUR=10s
while [ $# -gt 0 ]; do
  case $1 in
    -duration) DUR=$2; shift ;;
    -quick) DUR=4s ;;
    -keep) KEEP_WORK=1 ;;
    *) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
  esac
  shift
done
BENCH_PASS=${BENCH_PASS:-bench-pass-7}

# config FILE SHAPING [APPS] writes a config whose shaping section is SHAPING.
config() {
  cat >"$1" <<EOF
listen: 127.0.0.1:0
admin_listen: ""
auth: {users_file: $WORK/users.htpasswd}
access: {client_networks: [127.0.0.0/8], deny_destinations: [private, link-local, metadata]}
limits: {max_sessions: 20000, max_sessions_per_client_ip: 20000, max_sessions_per_user: 20000}
shaping:
  $2
${3:-}
EOF
}

# run LABEL RATE-BYTES/S CONFIG USERS=N,... starts the daemon on CONFIG, runs one
# download with those sessions per user, and prints a row per user.
run() {
  local label=$1 rate=$2 j
  if [ -n "${SS_PID:-}" ]; then stop_pid "$SS_PID"; forget_pid "$SS_PID"; fi
  start_sockshaper "$3"
  j=$(bench download -proxy "$SS_ADDR" -users "$(echo "$4" | sed 's/=[0-9]*//g')" -password "$BENCH_PASS" \
    -user-per-conn "$4" -warmup 3s -duration "$DUR")
  jq -r --arg l "$label" '
    def r: if . >= 100 then round else . * 10 | round / 10 end;
    (.users // []) as $u | ($u | length) as $k |
    ($u | map(.bytes) | add // 0) as $all |
    $u[] | "| \($l) | \(.user) | \(.conns) | \(.total_mibps * 1048576 / 1000 | r) | \(if $all > 0 then (.bytes / $all * 100 | r) else 0 end)% | \(100 / $k | r)% | \(.cv * 1000 | round / 1000) |"' <<<"$j"
  jq -r --argjson rate "$rate" '"| | all | \(.conns // 0) | \(.total_mibps // 0 | . * 1048576 / 1000 | round) of \($rate / 1000) | errors: \(.errors // "?") | | |"' <<<"$j"
}

main() {
  bench_init
  need_packages jq:jq
  build_tools
  [ "$SOCKSHAPER_OK" = 1 ] || die "sockshaper must build for this script"
  make_users "$WORK/users.htpasswd" heavy light a b c mid
  local t0=$SECONDS
  echo "sockshaper fairness between users: $DUR measured after 3 s; rates from sockbench (client side);" \
    "$(nproc) cores, Linux $(uname -r), $(date -u +%F)"
  echo
  echo "| shared bucket | user | sessions | rate (kB/s) | share of all | fair share (1/k) | CV across the user's sessions |"
  echo "| --- | --- | --- | --- | --- | --- | --- |"
  config "$WORK/g4.yaml" "global: {upload: 0, download: 4Mbit}"
  run "global 4 Mbit/s" 500000 "$WORK/g4.yaml" heavy=100,light=1
  run "global 4 Mbit/s" 500000 "$WORK/g4.yaml" a=1,b=10,c=100
  config "$WORK/g64k.yaml" "global: {upload: 0, download: 64kbit}"
  run "global 64 kbit/s" 8000 "$WORK/g64k.yaml" heavy=100,light=1
  config "$WORK/g100.yaml" "global: {upload: 0, download: 100Mbit}"
  run "global 100 Mbit/s" 12500000 "$WORK/g100.yaml" heavy=100,light=1
  config "$WORK/teams.yaml" "apps: {teams: {total: {download: 4Mbit}}}" "apps: {teams: {networks: [127.0.0.1/32]}}"
  run "teams total 4 Mbit/s" 500000 "$WORK/teams.yaml" heavy=100,mid=10,light=1
  log "done in $((SECONDS - t0)) s"
}

main
