# Build: a static, stripped binary.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/sockshaper ./cmd/sockshaper

# Run: no shell, no package manager, not root.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/sockshaper /usr/local/bin/sockshaper
COPY configs/docker.yaml /etc/sockshaper/sockshaper.yaml
USER nonroot:nonroot
EXPOSE 1080 9180
ENTRYPOINT ["/usr/local/bin/sockshaper"]
# Mount your config and users file over these (see docker-compose.yml).
CMD ["-config", "/etc/sockshaper/sockshaper.yaml", "-log-format", "json"]
