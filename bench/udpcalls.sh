#!/usr/bin/env bash
# udpcalls.sh: how many concurrent calls over UDP ASSOCIATE sockshaper and Dante
# carry on this machine, against the direct path in the same run.
#
# A call is one association, one user, carrying media both ways: 200-byte
# datagrams every 20 ms each way (50/s, 80 kbit/s of payload), source-paced at
# the call's own phase, to a far end of its own on 127.66.0.1 that answers once
# the client's first datagram reached it (`sockbench udp-calls`). sockshaper
# classes 127.66.0.0/16 as skype with a per-user limit of 256 kbit/s each way
# (above the call's rate; bcrypt users file, one user per call); Dante
# authenticates one system user for all calls (it has no per-user limits).
#
# A path carries N calls when, in a run of N, at most 0.1% of the datagrams
# scheduled in the measured phase are lost, and the jitter p99 (the variation
# of each datagram's delay after its sender's schedule against the previous
# one's, at the receiver) is at most 5 ms above the direct path's in the run
# just before. N steps up (250, 500, 1000, 2000, 4000, 6000) while a path still
# carries it, then bisects between its last pass and first failure to within
# 10%. Every run starts the proxies afresh, so RSS per call is that run's.
# Printed: every run (the ladder), then per path the largest N and, at that N,
# loss, jitter, proxy CPU per 1,000 calls and RSS per call. Exits 0 whatever
# the figures; the goal (sockshaper's N ≥ 2× Dante's) is stated, not enforced.
#
# What bounds N besides CPU: sockbench holds 3 descriptors per call (client
# socket, control connection, far end) and the proxy 2, under a hard limit
# that this script cannot raise without CAP_SYS_RESOURCE.
#
# usage: bench/udpcalls.sh [-rounds N] [-warmup D] [-duration D] [-max N] [-quick] [-keep]
#   -rounds N    whole searches, one after the other (default 1); the summary
#                shows each path's N per round and the median
#   -warmup D    media flows this long before the measured phase (default 3s)
#   -duration D  measured phase of each run (default 10s)
#   -max N       largest N tried (default: what the descriptor limit allows)
#   -quick       smoke test: steps 50 and 100 only, 1 s + 3 s runs
#   -keep        keep the work directory (configs, logs, every JSON result)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/proxies.sh"

ROUNDS=1 WARMUP=3s DUR=10s MAXN="" LADDER="250 500 1000 2000 4000 6000"
LOSS_MAX=0.1 JITTER_ADD_MAX=5 SKYPE_RATE=256kbit FAR=127.66.0.1
SHAPED_RATE=50MiB # proxies.sh writes a shaped config this script does not use
while [ $# -gt 0 ]; do
  case $1 in
    -rounds) ROUNDS=$2; shift ;;
    -warmup) WARMUP=$2; shift ;;
    -duration) DUR=$2; shift ;;
    -max) MAXN=$2; shift ;;
    -quick) LADDER="50 100" WARMUP=1s DUR=3s ;;
    -keep) KEEP_WORK=1 ;;
    *) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
  esac
  shift
done
[[ $ROUNDS =~ ^[1-9]$ ]] || die "-rounds: want 1 to 9"

# calls_config FILE writes sockshaper's config: no group, the far ends' network
# classed as skype with a per-user limit above a call's rate.
calls_config() {
  cat >"$1" <<EOC
listen: 127.0.0.1:0
admin_listen: ""
auth: {users_file: $WORK/calls/users.htpasswd}
access: {client_networks: [127.0.0.0/8], deny_destinations: [private, link-local, metadata]}
limits: {max_sessions: 20000, max_sessions_per_client_ip: 20000, max_sessions_per_user: 20000}
shaping:
  default_group: ""
  groups: {}
  apps: {skype: {per_user: {upload: $SKYPE_RATE, download: $SKYPE_RATE}}}
  global: {upload: 0, download: 0}
apps:
  skype:
    networks: [127.66.0.0/16]
EOC
}

# start_path NAME starts a fresh proxy for one run and sets PID and CONN.
start_path() {
  PID="" CONN=""
  case $1 in
    direct) CONN="-direct" ;;
    sockshaper)
      start_sockshaper "$WORK/calls.yaml"
      PID=$SS_PID CONN="-proxy $SS_ADDR -users-file $WORK/calls/users.htpasswd -password $BENCH_PASS" ;;
    dante)
      danted -f "$WORK/danted.conf" >>"$WORK/danted.out" 2>&1 &
      PID=$!
      STARTED+=("$PID")
      wait_port "$DANTE_PORT"
      CONN="-proxy 127.0.0.1:$DANTE_PORT -users $BENCH_SYSUSER -password $BENCH_PASS" ;;
  esac
}

stop_path() {
  [ -n "$PID" ] || return 0
  stop_pid "$PID"
  forget_pid "$PID"
}

# call_run ROUND PATH N runs N calls over PATH and records the JSON as
# $WORK/run.ROUND.PATH.N.K (K counts repeats of the same N).
call_run() {
  local round=$1 p=$2 n=$3 conn pidflag=() f k=1
  while [ -e "$WORK/run.$round.$p.$n.$k" ]; do k=$((k + 1)); done
  f="$WORK/run.$round.$p.$n.$k"
  start_path "$p"
  read -ra conn <<<"$CONN"
  [ -n "$PID" ] && pidflag=(-pid "$PID")
  log "round $round: $p, $n calls"
  bench udp-calls "${conn[@]}" "${pidflag[@]}" -conns "$n" -far "$FAR" -warmup "$WARMUP" -duration "$DUR" >"$f"
  stop_path
  LAST=$f
}

# passes FILE DIRECT-FILE says whether a run carried its calls: loss and added
# jitter within the bounds, every call live.
passes() {
  jq -e --slurpfile d "$2" --argjson loss "$LOSS_MAX" --argjson add "$JITTER_ADD_MAX" \
    '.live_calls == .calls and .loss_percent <= $loss and (.jitter.p99_ms - $d[0].jitter.p99_ms) <= $add' "$1" >/dev/null 2>&1
}

# try ROUND PATH N runs the direct path and then PATH at N; returns whether PATH
# carried it.
try() {
  call_run "$1" direct "$3"
  local d=$LAST
  call_run "$1" "$2" "$3"
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$(passes "$LAST" "$d" && echo pass || echo fail)" >>"$WORK/verdicts.tsv"
  printf '%s\t%s\n' "$LAST" "$d" >>"$WORK/pairs.tsv"
  passes "$LAST" "$d"
}

# search ROUND PATH finds PATH's largest N and appends it to $WORK/best.tsv.
search() {
  local round=$1 p=$2 good=0 bad="" n mid
  for n in $LADDER; do
    [ "$n" -gt "$MAXN" ] && break
    if try "$round" "$p" "$n"; then good=$n; else bad=$n; break; fi
  done
  while [ -n "$bad" ] && [ $((bad - good)) -gt $((good / 10 + 10)) ]; do
    mid=$(((good + bad) / 2))
    if try "$round" "$p" "$mid"; then good=$mid; else bad=$mid; fi
  done
  printf '%s\t%s\t%s\n' "$round" "$p" "$good" >>"$WORK/best.tsv"
}

# field FILE JQ prints a figure of a run, "-" when missing.
field() { jq -r "($2) // \"-\" | if type == \"number\" then . * 1000 | round / 1000 else . end" "$1" 2>/dev/null || echo -; }

report() {
  echo "| round | path | calls | live | loss (%) | jitter p99 (ms) | direct's jitter p99 | added | jitter p99 against send times | delay p99 | proxy CPU (% of a core) | per 1,000 calls | RSS per call (KiB) | PSS per call (KiB) | sockbench CPU (%) | verdict |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
  local f d r p n v
  while IFS=$'\t' read -r f d; do
    IFS=. read -r _ r p n _ <<<"${f##*/}"
    v=$(awk -F'\t' -v r="$r" -v p="$p" -v n="$n" '$1==r && $2==p && $3==n {v=$4} END {print v}' "$WORK/verdicts.tsv")
    echo "| $r | $p | $n | $(field "$f" .live_calls) | $(field "$f" .loss_percent) | $(field "$f" .jitter.p99_ms) | $(field "$d" .jitter.p99_ms) |" \
      "$(jq -rn --slurpfile a "$f" --slurpfile b "$d" '($a[0].jitter.p99_ms - $b[0].jitter.p99_ms) * 1000 | round / 1000' 2>/dev/null || echo -) |" \
      "$(field "$f" .transit_jitter.p99_ms) | $(field "$f" .delay.p99_ms) | $(field "$f" .proxy_cpu_percent) | $(field "$f" .proxy_cpu_percent_per_1000_calls) |" \
      "$(field "$f" .proxy_rss_kib_per_call) | $(field "$f" .proxy_pss_kib_per_call) | $(field "$f" .tool_cpu_percent) | $v |"
  done <"$WORK/pairs.tsv"
  echo
  local s dn
  s=$(awk -F'\t' '$2=="sockshaper" {print $3}' "$WORK/best.tsv" | median)
  dn=$(awk -F'\t' '$2=="dante" {print $3}' "$WORK/best.tsv" | median)
  echo "Largest N carried (loss ≤ $LOSS_MAX%, jitter p99 ≤ $JITTER_ADD_MAX ms above direct), per round: sockshaper" \
    "$(awk -F'\t' '$2=="sockshaper" {printf "%s ", $3}' "$WORK/best.tsv")(median $s), Dante" \
    "$(awk -F'\t' '$2=="dante" {printf "%s ", $3}' "$WORK/best.tsv")(median $dn)."
  awk -v s="$s" -v d="$dn" 'BEGIN { if (d > 0) printf "sockshaper / Dante: %.2f× (goal ≥ 2×)\n", s / d; else print "sockshaper / Dante: - (Dante carried none of the steps)" }'
  echo "Descriptors: limit $(ulimit -n) (hard $(ulimit -Hn)); sockbench needs 3 per call, so N ≤ $MAXN here."
}

main() {
  bench_init
  need_packages danted:dante-server jq:jq
  raise_nofile 20000
  local lim load_before t0=$SECONDS r
  lim=$(ulimit -n)
  [ -n "$MAXN" ] || MAXN=$(((lim - 64) / 3))
  [ "$MAXN" -le $(((lim - 64) / 3)) ] || die "-max $MAXN: the descriptor limit $lim allows $(((lim - 64) / 3))"
  load_before=$(cut -d' ' -f1-3 /proc/loadavg)
  build_tools
  [ "$SOCKSHAPER_OK" = 1 ] || die "sockshaper must build for this script"
  setup_proxies
  local users=0 n
  for n in $LADDER; do users=$n; done
  users=$((users < MAXN ? users : MAXN)) # one user per call, for every N tried
  "$WORK/sockbench" campus -setup "$WORK/calls" -user-count "$users" -cost 5 -password "$BENCH_PASS" >&2
  calls_config "$WORK/calls.yaml"
  : >"$WORK/verdicts.tsv"; : >"$WORK/pairs.tsv"; : >"$WORK/best.tsv"
  for r in $(seq "$ROUNDS"); do
    search "$r" sockshaper
    search "$r" dante
  done
  log "done in $((SECONDS - t0)) s"
  echo "sockbench udp-calls: 200 B every 20 ms each way per call; runs of $WARMUP warm-up + $DUR measured; $ROUNDS round(s);" \
    "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), Linux $(uname -r), $(date -u +%F);" \
    "load average before: $load_before, after: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  report
}

main
