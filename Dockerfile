# sockshaper: a static binary on distroless, not root, no shell.
#
#   docker build -t sockshaper .          (or: podman build / buildah bud --format docker)
#   docker build --build-arg VERSION=1.2.0 --build-arg REVISION=$(git rev-parse HEAD) -t sockshaper:1.2.0 .
#
# Base images are fully qualified (registry/name:tag) so that daemonless builders
# (buildah, podman, kaniko), which have no default registry, resolve them too.
# HEALTHCHECK needs the docker image format: buildah and podman drop it from OCI
# images unless built with --format docker.

# Build: a static, stripped binary (CGO_ENABLED=0: no libc in the runtime image).
FROM docker.io/library/golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# .dockerignore keeps .git out of the context, so the toolchain cannot stamp the
# commit: pass it (and the release version) here; `sockshaper version` shows them.
ARG VERSION=""
ARG REVISION=""
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X main.version=${VERSION} -X main.revision=${REVISION}" \
      -o /out/sockshaper ./cmd/sockshaper

# Run: no shell, no package manager, uid 65532 (distroless "nonroot"). Mounted
# config and users files must be readable by that uid (see README, Docker).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/sockshaper /usr/local/bin/sockshaper
COPY configs/docker.yaml /etc/sockshaper/sockshaper.yaml
# Numeric, so that Kubernetes' runAsNonRoot can verify it.
USER 65532:65532
EXPOSE 1080 9180
# The binary probes its own /readyz (admin_listen of the config): no shell or curl
# needed. 503 while draining after SIGTERM, so a draining container shows unhealthy.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/sockshaper", "healthcheck", "-config", "/etc/sockshaper/sockshaper.yaml"]
ENTRYPOINT ["/usr/local/bin/sockshaper"]
# Mount your config and users file over /etc/sockshaper (see docker-compose.yml).
CMD ["-config", "/etc/sockshaper/sockshaper.yaml", "-log-format", "json"]
