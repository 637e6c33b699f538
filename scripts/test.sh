#!/usr/bin/env bash
# Runs every test of sockshaper: formatting, vet, and `go test -race` over every
# package, including the end-to-end tests that drive the built binary with real
# clients (curl, dante's socksify) and a real Prometheus server. Installs those tools
# from Debian's packages when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
need() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }
need curl curl
need promtool prometheus
need prometheus prometheus
need socksify dante-client
need python3 python3
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  # policy-rc.d keeps the prometheus package from starting a system service.
  DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi
go vet ./...
go test -race -count=1 -timeout 20m ./...
