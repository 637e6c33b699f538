# shellcheck shell=bash disable=SC2034  # shared with bench/tls.sh and lib.sh
# The HTTPS proxies bench/tls.sh measures: how each is configured, started and
# addressed. Source it after lib.sh.
#
# Both present the same certificate (ECDSA P-256, for 127.0.0.1 and
# proxy.bench) from a CA made for the run, and ask for the same Basic login:
# sockshaper: tls.listen, a bcrypt users file (verified logins cached), no
#   shaping, one JSON accounting line per session; its plain listener serves
#   the plain-text HTTP front for reference.
# Squid (Debian's squid-openssl): https_port with tls-cert/tls-key, Basic
#   through basic_ncsa_auth (credentials cached), no cache, no access log. It
#   speaks HTTP/1.1 only: it offers no ALPN, and no HTTP/2.

BENCH_PASS=${BENCH_PASS:-bench-pass-7}
SS_PID="" SS_ADDR="" SS_TLS_ADDR="" SQUID_PID="" SQUID_TLS_PORT=""

# tls_certs makes the run's CA and the proxies' certificate in $WORK/tls.
tls_certs() {
  local d="$WORK/tls"
  mkdir -p "$d"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=sockbench CA" -keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=proxy.bench" \
    -keyout "$d/proxy.key" -out "$d/proxy.csr" 2>/dev/null
  printf 'subjectAltName=DNS:proxy.bench,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$d/ext"
  openssl x509 -req -in "$d/proxy.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
    -days 2 -extfile "$d/ext" -out "$d/proxy.pem" 2>/dev/null
  [ -s "$d/proxy.pem" ] || die "openssl could not make the test certificate"
}

# tls_setup writes both proxies' configs and users.
tls_setup() {
  tls_certs
  make_users "$WORK/users.htpasswd" bench
  cat >"$WORK/sockshaper.yaml" <<EOF
listen: 127.0.0.1:0
admin_listen: ""
auth: {users_file: $WORK/users.htpasswd}
access: {client_networks: [127.0.0.0/8], deny_destinations: [private, link-local, metadata]}
limits: {max_sessions: 20000, max_sessions_per_client_ip: 20000, max_sessions_per_user: 20000}
tls: {listen: 127.0.0.1:0, cert_file: $WORK/tls/proxy.pem, key_file: $WORK/tls/proxy.key, max_concurrent_streams: 1000}
EOF
  SQUID_TLS_PORT=$(free_port)
  # Squid drops to its own user: it must reach its files.
  chmod 711 "$WORK"
  mkdir -p "$WORK/squid"
  cp "$WORK/tls/proxy.pem" "$WORK/tls/proxy.key" "$WORK/squid/"
  printf 'bench:%s\n' "$(openssl passwd -apr1 "$BENCH_PASS")" >"$WORK/squid/passwd"
  cat >"$WORK/squid/squid.conf" <<EOF
https_port 127.0.0.1:$SQUID_TLS_PORT tls-cert=$WORK/squid/proxy.pem tls-key=$WORK/squid/proxy.key
visible_hostname sockbench
auth_param basic program /usr/lib/squid/basic_ncsa_auth $WORK/squid/passwd
auth_param basic children 4
auth_param basic credentialsttl 2 hours
acl localnet src 127.0.0.0/8
acl users proxy_auth REQUIRED
http_access deny !localnet
http_access allow users
http_access deny all
cache deny all
access_log none
cache_log $WORK/squid/cache.log
pid_filename $WORK/squid/squid.pid
coredump_dir $WORK/squid
shutdown_lifetime 1 seconds
max_filedescriptors 65536
EOF
  chown -R proxy "$WORK/squid"
}

# start_sockshaper_tls starts sockshaper on $WORK/sockshaper.yaml and sets
# SS_PID, SS_ADDR (its plain listener) and SS_TLS_ADDR (its HTTPS listener).
start_sockshaper_tls() {
  local logf="$WORK/sockshaper.$RANDOM.log" line
  "$WORK/sockshaper" -config "$WORK/sockshaper.yaml" -log-format json 2>"$logf" &
  SS_PID=$!
  STARTED+=("$SS_PID")
  SS_ADDR="" SS_TLS_ADDR=""
  for _ in $(seq 100); do
    line=$(jq -Rc 'fromjson? | select(.msg=="serving")' "$logf" 2>/dev/null | head -1) || true
    if [ -n "$line" ]; then
      SS_ADDR=$(jq -r .listen <<<"$line") SS_TLS_ADDR=$(jq -r '.tls_listen // empty' <<<"$line")
      [ -n "$SS_TLS_ADDR" ] && return 0
      break
    fi
    running "$SS_PID" || break
    sleep 0.1
  done
  cat "$logf" >&2
  die "sockshaper did not start with its HTTPS listener"
}

# start_squid_tls starts Squid in the foreground and sets SQUID_PID.
start_squid_tls() {
  squid -N -f "$WORK/squid/squid.conf" >>"$WORK/squid/out" 2>&1 &
  SQUID_PID=$!
  STARTED+=("$SQUID_PID")
  wait_port "$SQUID_TLS_PORT"
}

# restart_tls_proxies starts both proxies anew, so each round starts from fresh
# processes.
restart_tls_proxies() {
  local p
  for p in $SS_PID $SQUID_PID; do
    stop_pid "$p"
    forget_pid "$p"
  done
  start_sockshaper_tls
  start_squid_tls
}

# tls_conn NAME prints the sockbench flags that reach NAME: sockshaper-tls
# (HTTP/1.1 CONNECT inside TLS), sockshaper-h2 (CONNECT streams on one HTTP/2
# connection), squid-tls (CONNECT inside TLS) or sockshaper-plain (CONNECT in
# the clear, the reference).
tls_conn() {
  local auth="-users bench -password $BENCH_PASS" ca="-ca $WORK/tls/ca.pem -server-name proxy.bench"
  case $1 in
    sockshaper-tls) echo "-http -tls $ca -proxy $SS_TLS_ADDR $auth" ;;
    sockshaper-h2) echo "-h2 -h2-conns 1 $ca -proxy $SS_TLS_ADDR $auth" ;;
    squid-tls) echo "-http -tls $ca -proxy 127.0.0.1:$SQUID_TLS_PORT $auth" ;;
    sockshaper-plain) echo "-http -proxy $SS_ADDR $auth" ;;
  esac
}

# tls_pid NAME prints "-pid PID" for NAME's process.
tls_pid() {
  case $1 in
    squid-tls) echo "-pid $SQUID_PID" ;;
    *) echo "-pid $SS_PID" ;;
  esac
}
