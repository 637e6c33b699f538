#!/usr/bin/env bash
# shaping.sh: the shaping issue's measurements through the real sockshaper binary,
# with bench/sockbench on 127.0.0.1.
#
#   1. alice, limited to 4 MiB/s download, over 1, 4 and 16 parallel sessions:
#      achieved total against the limit, and the CV across her sessions;
#   2. bob, in the same group, keeps >= 95% of his own 4 MiB/s while alice
#      saturates hers with 16 sessions;
#   3. an app-class total cap (2 MiB/s) binds when it is the smallest limit;
#   4. the global cap (6 MiB/s) binds when it is the smallest limit;
#   5. a SIGHUP rate change (4 -> 1 MiB/s and 1 -> 8 MiB/s) shows within 1 s.
#
# usage: bench/shaping.sh [-duration D] [-quick] [-keep]
#   -duration D  length of each transfer (default 10s); -quick: 3s
#   -keep        keep the work directory (configs, logs, every JSON result)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

DUR=10s
while [ $# -gt 0 ]; do
  case $1 in
    -duration) DUR=$2; shift ;;
    -quick) DUR=3s ;;
    -keep) KEEP_WORK=1 ;;
    *) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
  esac
  shift
done
BENCH_PASS=${BENCH_PASS:-bench-pass-7}
USERS=(-users "alice,bob" -password "$BENCH_PASS")

# config FILE USER-RATE [EXTRA-SHAPING [APPS]] writes a sockshaper config; the
# default EXTRA-SHAPING leaves the global buckets unlimited.
config() {
  local extra=${3:-} apps=${4:-}
  [ -n "$extra" ] || extra="global: {upload: 0, download: 0}"
  cat >"$1" <<EOF
listen: 127.0.0.1:0
admin_listen: ""
auth: {users_file: $WORK/users.htpasswd}
access: {client_networks: [127.0.0.0/8], deny_destinations: [private, link-local, metadata]}
limits: {max_sessions: 20000, max_sessions_per_client_ip: 20000, max_sessions_per_user: 20000}
shaping:
  default_group: g
  groups: {g: {upload: 0, download: $2}}
  $extra
$apps
EOF
}

# restart CONFIG stops the running daemon, if any, and starts one on CONFIG.
restart() {
  if [ -n "${SS_PID:-}" ]; then stop_pid "$SS_PID"; forget_pid "$SS_PID"; fi
  start_sockshaper "$1"
}

# row LABEL SESSIONS LIMIT-MiB JSON USER MIN-PERCENT MAX-PERCENT prints a table
# row for USER's total ("" for everyone) against LIMIT; the check passes when the
# achieved rate is within [MIN, MAX] percent of the limit.
row() {
  local got cvv
  if [ -z "$5" ]; then
    got=$(jq -r '.total_mibps // 0' <<<"$4"); cvv=$(jq -r '.cv // 0' <<<"$4")
  else
    got=$(jq -r --arg u "$5" '(.users // [])[] | select(.user==$u) | .total_mibps' <<<"$4")
    cvv=$(jq -r --arg u "$5" '(.users // [])[] | select(.user==$u) | .cv' <<<"$4")
  fi
  awk -v l="$1" -v s="$2" -v lim="$3" -v g="${got:-0}" -v cv="${cvv:-0}" -v lo="$6" -v hi="$7" \
    -v e="$(jq -r '.errors // "?"' <<<"$4")" 'BEGIN {
      d = (g - lim) / lim * 100
      ok = (d >= lo - 100 && d <= hi - 100 && e == 0) ? "ok" : "MISS"
      printf "| %s | %s | %.2f | %.2f | %+.1f%% | %.3f | %s | %s |\n", l, s, lim, g, d, cv, e, ok }'
}

# limits_table runs measurements 1 to 4.
limits_table() {
  local j n
  echo "| measurement | sessions | limit (MiB/s) | achieved (MiB/s) | vs limit | CV across sessions | errors | check |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
  config "$WORK/base.yaml" 4MiB
  restart "$WORK/base.yaml"
  for n in 1 4 16; do
    j=$(bench download -proxy "$SS_ADDR" "${USERS[@]}" -user-per-conn "alice=$n" -duration "$DUR")
    row "alice alone, 4 MiB/s user limit (±5%)" "$n" 4 "$j" "" 95 105
  done
  j=$(bench download -proxy "$SS_ADDR" "${USERS[@]}" -user-per-conn alice=16,bob=1 -duration "$DUR")
  row "alice saturating (16 sessions) next to bob" 16 4 "$j" alice 95 105
  row "bob next to alice: keeps ≥95% of 4 MiB/s" 1 4 "$j" bob 95 105
  config "$WORK/app.yaml" 4MiB "apps: {bulk: {total: {download: 2MiB}}}
  global: {upload: 0, download: 0}" "apps: {bulk: {networks: [127.0.0.1/32]}}"
  restart "$WORK/app.yaml"
  j=$(bench download -proxy "$SS_ADDR" "${USERS[@]}" -user-per-conn alice=4,bob=4 -duration "$DUR")
  row "app class bulk total 2 MiB/s < 2 users × 4 MiB/s" 8 2 "$j" "" 95 105
  config "$WORK/global.yaml" 4MiB "global: {upload: 0, download: 6MiB}"
  restart "$WORK/global.yaml"
  j=$(bench download -proxy "$SS_ADDR" "${USERS[@]}" -user-per-conn alice=4,bob=4 -duration "$DUR")
  row "global 6 MiB/s < 2 users × 4 MiB/s" 8 6 "$j" "" 95 105
}

# change FROM TO CONNS measures a live change of alice's limit from FROM to TO
# (in MiB/s) over CONNS sessions and prints a table row.
change() {
  local j
  config "$WORK/live.yaml" "$1MiB"
  config "$WORK/next.yaml" "$2MiB"
  restart "$WORK/live.yaml"
  j=$(bench rate-change -proxy "$SS_ADDR" "${USERS[@]}" -user-per-conn "alice=$3" -pid "$SS_PID" \
    -config "$WORK/live.yaml" -new-config "$WORK/next.yaml" -new-rate "$2MiB")
  jq -r --arg f "$1" --arg t "$2" 'def secs: if . < 0 then "never" else .*100|round/100 end;
    "| \($f) → \($t) MiB/s | \(.conns // "?") | \(.before_mibps // 0 | .*100|round/100) | \(.after_mibps // 0 | .*100|round/100) | \(.reached_seconds // -1 | secs) | \(.settled_seconds // -1 | secs) | \(.errors // "?") | \(if (.reached_seconds // -1) >= 0 and .reached_seconds <= 1 then "ok" else "MISS" end) |"' <<<"$j"
}

change_table() {
  echo "| SIGHUP change of alice's limit | sessions | before (MiB/s) | after (MiB/s) | reached within 10% (s) | settled for 1 s (s) | errors | check: reached ≤ 1 s |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
  local c
  for c in 1 4; do
    change 4 1 "$c"
    change 1 8 "$c"
  done
}

main() {
  bench_init
  need_packages jq:jq
  build_tools
  [ "$SOCKSHAPER_OK" = 1 ] || die "sockshaper must build for this script"
  make_users "$WORK/users.htpasswd" alice bob
  local t0=$SECONDS
  echo "sockshaper shaping: transfers of $DUR each; rates from sockbench (client side);" \
    "$(nproc) cores, Linux $(uname -r), $(date -u +%F)"
  echo
  limits_table
  echo
  change_table
  log "done in $((SECONDS - t0)) s"
}

main
