#!/usr/bin/env bash
# calls.sh: 5,000 concurrent shaped sessions at 256 kbit/s each, one per user,
# against the real sockshaper binary, with `sockbench download` on 127.0.0.1.
#
# Two daemons on the same bcrypt users file (cost 5), measured interleaved:
#   A shaped:   every user in a group with download 256kbit; the sources are
#               unpaced (data always waiting), so the token buckets set the rate;
#   B unshaped: no group, so no bucket; each source paces itself to 256 kbit/s
#               in frames (default 20 ms, 640 B), as a call's sender does.
# Each run opens the sessions (one user each), lets data flow for the warm-up
# (logins done, each bucket past its first burst), then measures: the share of
# sessions within ±5% of 256 kbit/s, per-session rate min/median/max, proxy CPU
# (% of one core, and per 1,000 sessions), proxy RSS, sockbench's own CPU.
# The issue's bar: every session within ±5%, and CPU(A) ≤ 1.5 × CPU(B).
#
# usage: bench/calls.sh [-rounds N] [-sessions N] [-warmup D] [-duration D] [-quick] [-keep]
#   -rounds N    A/B pairs, interleaved (default 3); the table shows medians
#   -sessions N  sessions, one per user (default 5000)
#   -warmup D    data flows this long before measuring (default 5s)
#   -duration D  measured phase (default 30s: a lone slow session moves its
#                bytes in chunks of half a second, so one chunk more or less
#                is ±1.7% of 30 s, ±3.3% of 15 s)
#   -frame D     B's frame interval (default 20ms); see the frames column for
#                how many went out as writes of their own
#   -quick       smoke test: 500 sessions, 2 s + 5 s, 1 round
#   -keep        keep the work directory (configs, logs, every JSON result)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ROUNDS=3 SESSIONS=5000 WARMUP=5s DUR=30s FRAME=20ms
while [ $# -gt 0 ]; do
  case $1 in
    -rounds) ROUNDS=$2; shift ;;
    -sessions) SESSIONS=$2; shift ;;
    -warmup) WARMUP=$2; shift ;;
    -duration) DUR=$2; shift ;;
    -frame) FRAME=$2; shift ;;
    -quick) ROUNDS=1 SESSIONS=500 WARMUP=2s DUR=5s ;;
    -keep) KEEP_WORK=1 ;;
    *) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
  esac
  shift
done
BENCH_PASS=${BENCH_PASS:-bench-pass-7}
RATE=256kbit TOL=5%

# config FILE SHAPING writes a daemon config on the users file; pprof is on, on
# an admin address of its own, so a slow run can be profiled while it lasts.
config() {
  cat >"$1" <<EOF
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
metrics: {pprof: true}
auth: {users_file: $WORK/calls/users.htpasswd}
access: {client_networks: [127.0.0.0/8], deny_destinations: [private, link-local, metadata]}
limits: {max_sessions: 20000, max_sessions_per_client_ip: 20000, max_sessions_per_user: 20000}
shaping: $2
EOF
}

# run KIND ADDR PID EXTRA... runs one measured download and prints its JSON.
run() {
  local kind=$1 addr=$2 pid=$3
  shift 3
  # No settle_timewait: the loopback is shared with other benchmarks whose
  # TIME_WAIT sockets would make it wait its full 65 s every run, and Linux reuses
  # loopback TIME_WAIT ports for new connects (tcp_tw_reuse 2, the default).
  log "round $r: $kind ($SESSIONS sessions)"
  bench download -proxy "$addr" -pid "$pid" -users-file "$WORK/calls/users.htpasswd" -password "$BENCH_PASS" \
    -conns "$SESSIONS" -warmup "$WARMUP" -duration "$DUR" -read-every 100ms \
    -expect-rate "$RATE" -tolerance "$TOL" -timeout 30s "$@" | tee "$WORK/$kind.$r.json"
}

# stat KIND JQ-EXPR prints the median of EXPR over KIND's rounds with (min–max).
stat() {
  local vals
  vals=$(for f in "$WORK/$1".*.json; do jq -r "($2)? // empty" "$f"; done)
  [ -n "$vals" ] || { echo "-"; return; }
  printf '%s (%s–%s)' "$(num "$(median <<<"$vals")")" "$(num "$(sort -g <<<"$vals" | head -1)")" "$(num "$(sort -g <<<"$vals" | tail -1)")"
}

row() {
  echo "| $2 | $(stat "$1" .live_conns) | $(stat "$1" '.rate_check.share_within * 100') | $(stat "$1" .rate_check.min_kbps) | $(stat "$1" .rate_check.median_kbps) | $(stat "$1" .rate_check.max_kbps) | $(stat "$1" .proxy_cpu_percent) | $(stat "$1" .proxy_cpu_percent_per_1000_sessions) | $(stat "$1" .proxy_rss_mib) | $(stat "$1" .tool_cpu_percent) | $(stat "$1" '.frames_sent_share * 100') | $(stat "$1" .errors) |"
}

# ratios prints CPU(A)/CPU(B) of each round, pairing the interleaved runs.
ratios() {
  local i a b
  for i in $(seq "$ROUNDS"); do
    a=$(jq -r '.proxy_cpu_percent // empty' "$WORK/A.$i.json") b=$(jq -r '.proxy_cpu_percent // empty' "$WORK/B.$i.json")
    [ -n "$a" ] && [ -n "$b" ] && awk -v a="$a" -v b="$b" 'BEGIN { if (b > 0) printf "%.3f\n", a / b }'
  done
}

main() {
  bench_init
  need_packages jq:jq
  # sockbench holds 2 descriptors per session, each proxy 2 per open session.
  raise_nofile 20000
  build_tools
  [ "$SOCKSHAPER_OK" = 1 ] || die "sockshaper must build for this script"
  local t0=$SECONDS load_before
  load_before=$(cut -d' ' -f1-3 /proc/loadavg)
  "$WORK/sockbench" campus -setup "$WORK/calls" -user-count "$SESSIONS" -cost 5 -password "$BENCH_PASS" >&2
  config "$WORK/A.yaml" "{default_group: g, groups: {g: {upload: 0, download: $RATE}}, global: {upload: 0, download: 0}}"
  config "$WORK/B.yaml" "{default_group: \"\", groups: {}, global: {upload: 0, download: 0}}"
  start_sockshaper "$WORK/A.yaml"
  local a_pid=$SS_PID a_addr=$SS_ADDR
  start_sockshaper "$WORK/B.yaml"
  local b_pid=$SS_PID b_addr=$SS_ADDR
  log "A shaped: pid $a_pid on $a_addr; B unshaped: pid $b_pid on $b_addr; descriptor limit $(ulimit -n)"
  for r in $(seq "$ROUNDS"); do
    run A "$a_addr" "$a_pid" >/dev/null
    run B "$b_addr" "$b_pid" -source-rate-per-conn "$RATE" -frame "$FRAME" >/dev/null
  done
  local frame_b
  frame_b=$(jq -r '.frame_bytes // "?"' "$WORK/B.1.json")
  echo "sockshaper calls: $SESSIONS sessions, one per user, at $RATE each; $ROUNDS interleaved rounds of $WARMUP warm-up + $DUR measured;" \
    "B's sources send $FRAME frames of $frame_b B; client side polled every 100 ms;" \
    "$(nproc) cores, Linux $(uname -r), $(date -u +%F); load average before: $load_before; measured under shared load"
  echo
  echo "| run | sessions | within ±$TOL (%) | per-session min (kbit/s) | median | max | proxy CPU (% of a core) | per 1,000 sessions | proxy RSS (MiB) | sockbench CPU (%) | frames sent as own writes (%) | errors |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
  row A "A shaped: group download $RATE, sources unpaced"
  row B "B unshaped: sources paced to $RATE in $FRAME frames"
  echo
  local rs
  rs=$(ratios)
  echo "CPU(A)/CPU(B) per round: $(tr '\n' ' ' <<<"$rs")→ median $(median <<<"$rs") (the bar: ≤ 1.5)"
  local busy
  busy=$(for f in "$WORK"/[AB].*.json; do jq -r '(.proxy_cpu_percent // 0) + .tool_cpu_percent' "$f"; done | sort -g | tail -1)
  echo "Frames sent as own writes below 100% mean the frame pacer woke late and merged frames: the proxy then saw fewer, larger messages than calls send."
  awk -v b="$busy" -v c="$(nproc)" 'BEGIN { if (b >= 85 * c) printf "Warning: proxy + sockbench used up to %.0f%% of %d cores: the machine was saturated, so rates and CPU shares are not clean.\n", b, c }'
  log "done in $((SECONDS - t0)) s"
}

main
