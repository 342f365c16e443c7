# syntax=docker/dockerfile:1

# CoreDNS with every in-tree plugin plus healthfailover, packaged like the
# stock coredns/coredns image so that it can replace cluster DNS as it is:
# same entry point (/coredns), same ports, non-root.
#
#   docker build -t healthfailover-coredns:dev .

# The builder runs on the build machine and cross-compiles for the target
# platform (docker buildx build --platform linux/arm64 … works too).
FROM --platform=$BUILDPLATFORM golang:1.26 AS build

# setcap, to let the non-root binary bind port 53 (see below).
RUN apt-get update \
 && apt-get install -y --no-install-recommends libcap2-bin \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src

# Modules first: they change far less often than the sources.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download

COPY . .
ARG TARGETOS
ARG TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w" -o /out/coredns ./cmd/coredns

# As in the stock image: the binary carries the file capability
# cap_net_bind_service, so that it binds port 53 without running as root.
# Kubernetes must leave NET_BIND_SERVICE in the container's capability set
# (securityContext.capabilities.add: [NET_BIND_SERVICE], as the stock
# Deployment does, and as deploy/kubernetes/deployment.yaml does); the
# Deployment also lowers net.ipv4.ip_unprivileged_port_start to 53 for
# runtimes that do not honour file capabilities.
RUN setcap cap_net_bind_service=+ep /out/coredns

# Static, with CA certificates (forward over TLS, https checks with
# tls_verify), no shell, and a numeric non-root user (65532, "nonroot") so
# that Kubernetes can enforce runAsNonRoot.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/coredns /coredns
USER 65532:65532
WORKDIR /
EXPOSE 53 53/udp
ENTRYPOINT ["/coredns"]
