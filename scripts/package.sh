#!/usr/bin/env bash
# Builds the Debian package dist/sockshaper_VERSION_ARCH.deb: a static binary named
# with its version and commit, the systemd unit, the config (a conffile), the
# logrotate snippet and the maintainer scripts of deploy/, put together by nfpm.
#
#   bash scripts/package.sh                  version from the latest v* tag, or 0.0.0~gitDATE.COMMIT
#   VERSION=1.2.0 bash scripts/package.sh    a release
#   GOARCH=arm64 bash scripts/package.sh     another architecture (Debian's name: arm64, armhf, ...)
#
# Prints the path of the package on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."

# nfpm, at a pinned version, from the Go module proxy when it is not installed.
NFPM_VERSION=v2.45.2
nfpm=$(command -v nfpm || true)
if [ -z "$nfpm" ]; then
  nfpm="$(go env GOPATH)/bin/nfpm"
  [ -x "$nfpm" ] || GOFLAGS= go install "github.com/goreleaser/nfpm/v2/cmd/nfpm@$NFPM_VERSION"
fi

revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
if [ -z "${VERSION:-}" ]; then
  if tag=$(git describe --tags --match 'v[0-9]*' 2>/dev/null); then
    VERSION=${tag#v}
    VERSION=${VERSION//-/+}   # v1.2.0-3-gabc: 1.2.0+3+gabc, after 1.2.0 in Debian's order
  else
    VERSION="0.0.0~git$(git log -1 --format=%cd --date=format:%Y%m%d 2>/dev/null || date +%Y%m%d).${revision:0:12}"
  fi
fi
goarch=${GOARCH:-$(go env GOARCH)}
case "$goarch" in
  arm) ARCH=armhf ;;
  386) ARCH=i386 ;;
  *) ARCH=$goarch ;;
esac

mkdir -p dist/build
BINARY=dist/build/sockshaper
CGO_ENABLED=0 GOOS=linux GOARCH=$goarch go build -trimpath -buildvcs=false \
  -ldflags "-s -w -X main.version=$VERSION -X main.revision=$revision" -o "$BINARY" ./cmd/sockshaper

out="dist/sockshaper_${VERSION}_${ARCH}.deb"
rm -f "$out"
VERSION=$VERSION ARCH=$ARCH "$nfpm" package --config deploy/nfpm.yaml --packager deb --target "$out" >&2
echo "$out"
