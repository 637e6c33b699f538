# shellcheck shell=bash disable=SC2034,SC2153  # shared with the sourcing scripts and lib.sh
# The proxies bench/compare.sh measures: how each is configured, started and
# addressed. Source it after lib.sh.
#
# sockshaper: bcrypt users file, no shaping (the relay's own cost), auth cache at
#   its default. A second instance shaped to SHAPED_RATE per user serves the
#   shaped-versus-unshaped CPU comparison.
# Dante (danted): method username against the system password database, with a
#   system user made for the run; CONNECT and UDP ASSOCIATE (udpreply rules let
#   the answers of loopback peers back) to loopback only; its password is hashed with DANTE_CRYPT
#   (SHA512 by default; Debian's yescrypt makes every Dante session pay about
#   25 ms of hashing, since Dante has no cache, which then is all churn measures).
# microsocks: -u/-P authentication.
# armon: bench/armonpeer, the bare armon/go-socks5 server sockshaper builds on
#   (plaintext credentials, io.Copy relaying: Go's own splice; nothing else).

BENCH_PASS=${BENCH_PASS:-bench-pass-7}
BENCH_SYSUSER=${BENCH_SYSUSER:-sockbench}
DANTE_CRYPT=${DANTE_CRYPT:-SHA512}
CREATED_SYSUSER=0
SS_MAIN_PID="" SS_MAIN_ADDR="" SHAPED_PID="" SHAPED_ADDR="" DANTE_PID="" MS_PID="" ARMON_PID="" ARMON_ADDR=""

# proxy_names prints the proxies to measure, direct first.
proxy_names() {
  echo direct
  [ "$SOCKSHAPER_OK" = 1 ] && echo sockshaper
  echo dante microsocks armon
}

# proxy_conn NAME prints the sockbench flags that reach NAME.
proxy_conn() {
  case $1 in
    direct) echo "-direct" ;;
    sockshaper) echo "-proxy $SS_MAIN_ADDR -users bench -password $BENCH_PASS" ;;
    dante) echo "-proxy 127.0.0.1:$DANTE_PORT -users $BENCH_SYSUSER -password $BENCH_PASS" ;;
    microsocks) echo "-proxy 127.0.0.1:$MS_PORT -users $BENCH_SYSUSER -password $BENCH_PASS" ;;
    armon) echo "-proxy $ARMON_ADDR -users $BENCH_SYSUSER -password $BENCH_PASS" ;;
  esac
}

# proxy_pid NAME prints "-pid PID" for a proxy, nothing for direct.
proxy_pid() {
  case $1 in
    sockshaper) echo "-pid $SS_MAIN_PID" ;;
    dante) echo "-pid $DANTE_PID" ;;
    microsocks) echo "-pid $MS_PID" ;;
    armon) echo "-pid $ARMON_PID" ;;
  esac
}

remove_sysuser() {
  if [ "$CREATED_SYSUSER" = 1 ]; then userdel "$BENCH_SYSUSER" 2>/dev/null || true; fi
}

# sockshaper_config FILE DOWNLOAD-RATE writes a config; rate 0 means no group
# at all, so no bucket is in the path.
sockshaper_config() {
  local shaping="{default_group: g, groups: {g: {upload: 0, download: $2}}, global: {upload: 0, download: 0}}"
  [ "$2" = 0 ] && shaping="{default_group: \"\", groups: {}, global: {upload: 0, download: 0}}"
  cat >"$1" <<EOF
listen: 127.0.0.1:0
admin_listen: ""
auth: {users_file: $WORK/users.htpasswd}
access: {client_networks: [127.0.0.0/8], deny_destinations: [private, link-local, metadata]}
limits: {max_sessions: 20000, max_sessions_per_client_ip: 20000, max_sessions_per_user: 20000}
shaping: $shaping
EOF
}

dante_config() {
  cat >"$WORK/danted.conf" <<EOF
logoutput: $WORK/danted.log
internal: 127.0.0.1 port = $DANTE_PORT
external: lo
socksmethod: username
clientmethod: none
user.privileged: root
user.unprivileged: nobody
client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }
socks pass { from: 127.0.0.0/8 to: 127.0.0.0/8 command: connect udpassociate }
socks pass { from: 127.0.0.0/8 to: 127.0.0.0/8 command: udpreply }
EOF
}

# setup_proxies writes every config and makes the users.
setup_proxies() {
  if ! id "$BENCH_SYSUSER" >/dev/null 2>&1; then
    useradd -M -s /usr/sbin/nologin "$BENCH_SYSUSER"
    CREATED_SYSUSER=1
    CLEANUP_HOOK=remove_sysuser
  fi
  printf '%s:%s\n' "$BENCH_SYSUSER" "$BENCH_PASS" | chpasswd -c "$DANTE_CRYPT"
  DANTE_PORT=$(free_port)
  MS_PORT=$(free_port)
  dante_config
  (cd "$BENCH_ROOT" && go build -o "$WORK/armonpeer" ./bench/armonpeer) || die "bench/armonpeer does not build"
  [ "$SOCKSHAPER_OK" = 1 ] || return 0
  make_users "$WORK/users.htpasswd" bench
  sockshaper_config "$WORK/unshaped.yaml" 0
  sockshaper_config "$WORK/shaped.yaml" "$SHAPED_RATE"
}

# restart_proxies stops the proxies, if running, and starts them anew, so each
# round's idle memory starts from a fresh process.
restart_proxies() {
  local p
  for p in $SS_MAIN_PID $SHAPED_PID $DANTE_PID $MS_PID $ARMON_PID; do
    stop_pid "$p"
    forget_pid "$p"
  done
  if [ "$SOCKSHAPER_OK" = 1 ]; then
    start_sockshaper "$WORK/unshaped.yaml"
    SS_MAIN_PID=$SS_PID SS_MAIN_ADDR=$SS_ADDR
    start_sockshaper "$WORK/shaped.yaml"
    SHAPED_PID=$SS_PID SHAPED_ADDR=$SS_ADDR
  fi
  danted -f "$WORK/danted.conf" >>"$WORK/danted.out" 2>&1 &
  DANTE_PID=$!
  STARTED+=("$DANTE_PID")
  microsocks -i 127.0.0.1 -p "$MS_PORT" -u "$BENCH_SYSUSER" -P "$BENCH_PASS" >>"$WORK/microsocks.out" 2>&1 &
  MS_PID=$!
  STARTED+=("$MS_PID")
  start_armon
  wait_port "$DANTE_PORT"
  wait_port "$MS_PORT"
}

# start_armon starts bench/armonpeer and sets ARMON_PID and ARMON_ADDR (the
# address it prints).
start_armon() {
  local out="$WORK/armonpeer.$RANDOM.out"
  "$WORK/armonpeer" -listen 127.0.0.1:0 -user "$BENCH_SYSUSER" -password "$BENCH_PASS" >"$out" 2>&1 &
  ARMON_PID=$!
  STARTED+=("$ARMON_PID")
  ARMON_ADDR=""
  for _ in $(seq 100); do
    ARMON_ADDR=$(awk '$1=="serving" {print $2; exit}' "$out")
    [ -n "$ARMON_ADDR" ] && return 0
    running "$ARMON_PID" || break
    sleep 0.1
  done
  cat "$out" >&2
  die "armonpeer did not start"
}

# warm NAME runs short sessions through a proxy so that lazily started workers
# (Dante's child processes) exist before anything is measured.
warm() {
  [ "$1" = direct ] && return 0
  local conn
  read -ra conn <<<"$(proxy_conn "$1")"
  bench churn "${conn[@]}" -conns 4 -duration 300ms >/dev/null
  bench download "${conn[@]}" -conns 2 -duration 300ms >/dev/null
}
