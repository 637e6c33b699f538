#!/usr/bin/env bash
# Runs every test of sockshaper: formatting, vet, and `go test -race` over every
# package, including the end-to-end tests that drive the built binary with real
# clients (curl, dante's socksify, Chromium and puppeteer-core, Python), a real
# Prometheus server, a real OpenLDAP server (slapd), a real MIT Kerberos KDC, Redis and HAProxy, and the
# deployment tools (systemd-analyze, dpkg, logrotate, buildah). Installs those tools
# from Debian's packages (puppeteer-core from npm) when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
need() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }
need curl curl
need promtool prometheus
need prometheus prometheus
need socksify dante-client
need python3 python3
need systemd-analyze systemd
need logrotate logrotate
need buildah buildah
need busybox busybox-static
need redis-server redis-server
need haproxy haproxy
need /usr/sbin/slapd slapd   # /usr/sbin may not be on a user's PATH
need ldapadd ldap-utils
need /usr/sbin/krb5kdc krb5-kdc          # the test KDC (internal/kdctest)
need /usr/sbin/kadmin.local krb5-admin-server
need kinit krb5-user                     # kinit, kvno for the tests' tickets
need faketime faketime                   # a client with a skewed clock (Kerberos)
need unshare util-linux                  # unshare, nsenter: a daemon in its own network namespace (apps files)
need ip iproute2                         # public test addresses on that namespace's lo
need chromium chromium
need firefox-esr firefox-esr # the HTTPS proxy through a PAC file
need certutil libnss3-tools  # browsers' NSS databases trust the test CA
need node nodejs
need npm npm
need pgrep procps            # deploy/deb_test.go: no daemon runs after install
need git git                 # the version stamp checks (cli_test.go, deb_test.go)
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  # RUNLEVEL=1 and a policy-rc.d that denies every start keep the prometheus and
  # slapd packages from starting system services: the tests run their own.
  # The trap removes it however the install ends (a failed apt-get exits the
  # script under set -e): left behind, it would deny every service start on this
  # machine for good.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    trap '$sudo rm -f "$policy"' EXIT
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod 755 "$policy"
  fi
  DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [ -n "$(trap -p EXIT)" ]; then
    $sudo rm -f "$policy"
    trap - EXIT
  fi
fi

# Go-built tools, at pinned versions, into $(go env GOPATH)/bin, where the tests look:
# the Compose Specification's reference loader (compose-go) validates
# docker-compose.yml. scripts/package.sh installs nfpm itself.
gobin="$(go env GOPATH)/bin"
if [ ! -x "$gobin/compose-spec" ]; then
  echo "installing: compose-spec (compose-go v2.16.2)"
  tmp=$(mktemp -d)
  GOBIN="$tmp" go install github.com/compose-spec/compose-go/v2/cmd@v2.16.2
  mkdir -p "$gobin" && mv "$tmp/cmd" "$gobin/compose-spec" && rmdir "$tmp"
fi

# puppeteer-core drives the system Chromium through a proxy login in the HTTP
# front's tests (cmd/sockshaper/chromium_e2e_test.go, which names the version).
prefix="${XDG_CACHE_HOME:-$HOME/.cache}/sockshaper-test"
if [ ! -f "$prefix/node_modules/puppeteer-core/package.json" ]; then
  echo "installing: puppeteer-core 24.43.1 (npm)"
  npm install --prefix "$prefix" --no-audit --no-fund --silent puppeteer-core@24.43.1
fi

unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi
go vet ./...
go test -race -count=1 -timeout 20m ./...
# Goroutine stack sizes and allocation counts are what the race detector changes
# most: the test of the idle relay's stacks and the allocation guards of session
# churn (issue 24) run in the build that ships.
go test -count=1 -run 'TestIdleRelayStacksStaySmall|TestSessionChurnAllocations|TestKeyOfAllocatesNothing|TestIsTimeoutAtASessionsEndAllocatesNothing' ./proxy/ ./proxy/auth/ ./proxy/tunnel/
