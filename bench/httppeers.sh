# shellcheck shell=bash disable=SC2034,SC2153  # shared with the sourcing scripts and lib.sh
# The HTTP proxies bench/http.sh and bench/churn.sh measure sockshaper's HTTP
# front against: how each is configured, started and addressed. Source it after
# lib.sh; both ask for Basic credentials (user bench, password $BENCH_PASS).
#
# Squid: its basic_ncsa_auth helper against an MD5 htpasswd file, credentials
#   cached for two hours, no cache, no access log; run in the foreground (-N)
#   with a throwaway config, never as the system service.
# tinyproxy: BasicAuth from its config, errors-only log, in the foreground (-d).

SQUID_PID="" TP_PID="" SQUID_PORT="" TP_PORT=""

# http_peers_setup writes Squid's and tinyproxy's configs into $WORK.
http_peers_setup() {
  SQUID_PORT=$(free_port)
  TP_PORT=$(free_port)
  # Squid drops to its own user: it must reach its files.
  chmod 711 "$WORK"
  mkdir -p "$WORK/squid"
  printf 'bench:%s\n' "$(openssl passwd -apr1 "$BENCH_PASS")" >"$WORK/squid/passwd"
  cat >"$WORK/squid/squid.conf" <<CONF
http_port 127.0.0.1:$SQUID_PORT
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
CONF
  chown -R proxy "$WORK/squid"
  cat >"$WORK/tinyproxy.conf" <<CONF
Port $TP_PORT
Listen 127.0.0.1
Timeout 600
MaxClients 1000
Allow 127.0.0.1
BasicAuth bench $BENCH_PASS
LogLevel Error
CONF
}

# http_peers_restart stops Squid and tinyproxy, if running, and starts them anew.
http_peers_restart() {
  local p
  for p in $SQUID_PID $TP_PID; do
    stop_pid "$p"
    forget_pid "$p"
  done
  squid -N -f "$WORK/squid/squid.conf" >>"$WORK/squid/out" 2>&1 &
  SQUID_PID=$!
  STARTED+=("$SQUID_PID")
  tinyproxy -d -c "$WORK/tinyproxy.conf" >>"$WORK/tinyproxy.out" 2>&1 &
  TP_PID=$!
  STARTED+=("$TP_PID")
  wait_port "$SQUID_PORT"
  wait_port "$TP_PORT"
}

# squid_version and tinyproxy_version print the versions for table headers.
squid_version() { squid -v | head -1 | awk '{print $4}'; }
tinyproxy_version() { tinyproxy -v | awk '{print $2}'; }
