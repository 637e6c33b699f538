#!/usr/bin/env bash
# campus.sh: the standing campus-scale benchmark (issue 10) against the real
# sockshaper binary, with `sockbench campus` on 127.0.0.0/8.
#
# 2000 users (bcrypt cost 5, as htpasswd -B writes), 5 behind each client address
# (NAT), every one browsing (short sessions every 5 s on average); a hog (staff, no
# limit of their own) with 100 long downloads, 4 heavy users with 100 long
# downloads each, 100 downloaders with 2, 100 callers (a TCP and a UDP ASSOCIATE
# flow of 64-256 kbit/s each, paced by their senders, skype class), 20 users with
# an unpaced skype-class download; 1000 slowloris connections from 4 addresses,
# 800 unauthenticated HTTP keep-alive connections from 4 addresses (GET
# /proxy.pac, or a proxied GET answered 407, again every half keep-alive wait,
# at most every window) and 64 password guessers from 8 addresses. Limits: students 4 Mbit/s per
# user, skype 1 Mbit/s per user, a global cap at 60% of the offered download
# (the hog left out), shared max-min fairly between users. After a 10 s
# warm-up, 12 windows of 10 s: starved sessions (must be 0), each limit's rate
# and each user's share of the global cap against its setting, fairness, login
# times, proxy CPU and memory.
#
# usage: bench/campus.sh [-quick] [-keep] [-- SOCKBENCH-CAMPUS-FLAGS...]
#   -quick  smoke test: 300 users, 3 windows of 5 s (about 30 s in all)
#   -keep   keep the work directory (config, users file, logs, the JSON result)
#   flags after -- go to both `sockbench campus -setup` and the run (see
#   `sockbench campus -h`), e.g. -- -duration 60s -slowloris 0
#   SOCKSHAPER_TREE=DIR builds the proxy from another checkout (before/after)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ARGS=()
while [ $# -gt 0 ]; do
  case $1 in
    -quick) ARGS+=(-quick) ;;
    -keep) KEEP_WORK=1 ;;
    --) shift; ARGS+=("$@"); break ;;
    *) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
  esac
  shift
done
BENCH_PASS=${BENCH_PASS:-bench-pass-7}

# report prints the markdown tables of a campus result (JSON on stdin).
report() {
  jq -r '
    def r1: . * 10 | round / 10;
    def r2: . * 100 | round / 100;
    def r3: . * 1000 | round / 1000;
    def kinds: [.heavy, .download, .skype_bulk, .call_tcp, .call_udp, .hog] | map(. // 0 | tostring) | join("/");
    def answers: (.answers // {}) | to_entries | map("\(.key): \(.value)") | join(", ");
    def errs: [(.errors // {}) | to_entries[] | .value] | add // 0;
    def auth: if .proxy_auth_attempts then "\(.proxy_auth_attempts.failed // 0 | round) / \(.proxy_auth_attempts.throttled // 0 | round)" else "-" end;
    def spread: if .users > 0 then "\(.mean_mbps | r2) (\(.min_mbps | r2)–\(.max_mbps | r2))" else "-" end;
    "| window | starved: all (heavy/dl/bulk/call tcp/call udp/hog) | flows ended | browse/s | real login p50 / p99 (ms) | errors | guesses/s (answer p50, ms) | proxy: guesses checked / throttled | slowloris open / closed | keep-alive open / answers/s / closed | proxy CPU (% of a core) | proxy RSS (MiB) | proxy fds | sockbench CPU (%) |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    (.windows[] | "| \(.index) | \(.starved_total) (\(.starved | kinds)) | \(.flows_ended) | \(.browse.per_second | r1) | \(.logins.p50_ms | r1) / \(.logins.p99_ms | r1) | \(errs) | \(.guesses.per_second | r1) (\(.guesses.answer_time.p50_ms | r1)) | \(auth) | \(.slowloris.open) / \(.slowloris.closed_by_proxy) | \(.keepalive.open) / \(.keepalive.answers_per_second | r1) / \(.keepalive.closed_by_proxy) | \(.proxy.cpu_percent // 0 | r1) | \(.proxy.rss_mib // 0 | r1) | \(.proxy.fds // 0) | \(.tool_cpu_percent | r1) |"),
    "",
    "| window | global download (Mbit/s; cap \(.limits_mbps.global)) | students, per user: mean (min–max) | CV | heavy users, per user | hogs, per user | skype bulk, per user | calls: got / offered, mean (min) | calls: UDP loss |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    (.windows[] | "| \(.index) | \(.global_download_mbps | r1) | \(.students | spread) | \(.students.cv | r3) | \(.heavy | spread) | \(.hogs | spread) | \(.skype_bulk | spread) | \(.calls.achieved_of_offered_mean | r3) (\(.calls.achieved_of_offered_min | r3)) | \(.calls.udp_loss * 100 | r1)% |"),
    "",
    "Expected per user (settings, and the global cap shared max-min fairly between users, whatever their sessions: \(.limits_mbps.global_fair_share_per_user | r2) Mbit/s each for those who want more): students \(.windows[0].students.expected_mbps | r2) Mbit/s (limit \(.limits_mbps.student_per_user)), heavy users \(.windows[0].heavy.expected_mbps | r2) (limit \(.limits_mbps.student_per_user)), hogs \(.windows[0].hogs.expected_mbps | r2) (no limit of their own), skype bulk \(.windows[0].skype_bulk.expected_mbps | r2) (limit \(.limits_mbps.skype_per_user)); calls should get all they offer (1.0) with no UDP loss.",
    "",
    (.summary | "Whole run: **\(.starved_flow_windows) starved flow-windows** (at most \(.starved_max_in_a_window) in one window, \(.starved_flows) distinct flows; must be 0), \(.flows_ended) flows ended; \(.browse.sessions) short sessions (\(.browse.per_second | r1)/s, session p50 \(.browse.session_time.p50_ms | r1) ms, p99 \(.browse.session_time.p99_ms | r1) ms); real logins p50 \(.logins.p50_ms | r1) ms, p99 \(.logins.p99_ms | r1) ms; \(.guesses.attempts) guesses \(.guesses.outcomes // {} | tostring), answer p50 \(.guesses.answer_time.p50_ms | r1) ms; keep-alive answers {\(.keepalive | answers)} (\(.keepalive.answers_per_second | r1)/s), \(.keepalive.closed_by_proxy) connections closed by the proxy; errors \(.errors // {} | tostring); proxy CPU \(.proxy_cpu_percent_mean | r1)% of a core (mean), RSS up to \(.proxy_rss_mib_max | r1) MiB, \(.proxy_fds_max) fds; sockbench CPU \(.tool_cpu_percent_mean | r1)% of a core."),
    "",
    "Flows: \(.flows_opened) of \(.flows) opened in \(.open_seconds | r1) s; warm-up (first) logins p50 \(.warmup.logins.p50_ms | r1) ms, p99 \(.warmup.logins.p99_ms | r1) ms; warm-up errors \(.warmup.errors // {} | tostring)."'
}

main() {
  bench_init
  local t0=$SECONDS
  need_packages jq:jq
  # The proxy holds about 2 descriptors per flow, 1 per slowloris connection and
  # guess; sockbench as many again; 20000 is the hard limit here.
  raise_nofile 20000
  build_tools
  [ "$SOCKSHAPER_OK" = 1 ] || die "sockshaper must build for this script"
  settle_timewait 10000
  "$WORK/sockbench" campus -setup "$WORK/campus" -password "$BENCH_PASS" "${ARGS[@]}" >&2
  start_sockshaper "$WORK/campus/sockshaper.yaml"
  local admin
  admin=$(jq -Rr 'fromjson? | select(.msg=="serving") | .admin' "$(ls -t "$WORK"/sockshaper.*.log | head -1)" | head -1)
  log "sockshaper pid $SS_PID on $SS_ADDR, metrics on $admin; descriptor limit $(ulimit -n)"
  "$WORK/sockbench" campus -config "$WORK/campus/sockshaper.yaml" -password "$BENCH_PASS" -proxy "$SS_ADDR" \
    -pid "$SS_PID" -metrics "http://$admin/metrics" -json "${ARGS[@]}" >"$WORK/campus.json" 2>>"$WORK/sockbench.log" ||
    die "sockbench campus failed: $(tail -3 "$WORK/sockbench.log")"
  log "done in $((SECONDS - t0)) s"
  jq -r '"sockbench campus: \(.users) users on \(.client_addresses) addresses; \(.windows | length) windows of \(.mix.window_seconds) s after \(.mix.warmup_seconds) s; global cap \(.limits_mbps.global) Mbit/s, offered \(.offered_download_mbps * 10 | round / 10) Mbit/s;"' "$WORK/campus.json" |
    tr '\n' ' '
  echo "$(nproc) cores, Linux $(uname -r), $(date -u +%F), load average before the run: $LOAD_BEFORE"
  echo
  report <"$WORK/campus.json"
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
main
