# syntax=docker/dockerfile:1
# meshinit's images, one build target each, named as the chart names them:
#   docker build --target injector  -t ghcr.io/meshinit/injector:0.1.0 .
#   docker build --target kuma-cni  -t ghcr.io/meshinit/kuma-cni:0.1.0 .
#   docker build --target kuma-init -t ghcr.io/meshinit/kuma-init:0.1.0 .
# (`make images` builds all three.)
ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=v0.1.0
# Static and stripped, as `make build` makes them.
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/meshinit/meshinit/api.Version=${VERSION}" \
      -o /out/ ./cmd/injector ./cmd/kuma-init ./cmd/kuma-cni ./cmd/install-cni

# The webhook needs nothing but its binary; it runs as the chart's UID 65532.
FROM gcr.io/distroless/static-debian12:nonroot AS injector
COPY --from=build /out/injector /injector
USER 65532:65532
ENTRYPOINT ["/injector"]

# The CNI DaemonSet: install-cni copies /kuma-cni (KUMA_CNI_BINARY) onto the node.
FROM gcr.io/distroless/static-debian12 AS kuma-cni
COPY --from=build /out/install-cni /install-cni
COPY --from=build /out/kuma-cni /kuma-cni
ENTRYPOINT ["/install-cni"]

# kuma-init drives iptables-restore: Debian's iptables brings both the nft and legacy backends,
# and kuma-init picks the one the node uses.
FROM debian:bookworm-slim AS kuma-init
RUN apt-get update \
 && apt-get install -y --no-install-recommends iptables \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/kuma-init /usr/local/bin/kuma-init
ENTRYPOINT ["/usr/local/bin/kuma-init"]
