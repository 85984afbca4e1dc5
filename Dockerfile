# syntax=docker/dockerfile:1
#
# One image with both binaries: the worker host (the default command) and
# the azdurable command-line tool, which also serves the dashboard.
#
#   docker build -t azdurable:local .
#   docker run --rm -e AZDURABLE_CONNECTION_STRING=... azdurable:local
#   docker run --rm -e AZDURABLE_CONNECTION_STRING=... azdurable:local azdurable partitions --taskhub azdurable
#
# docker-compose.yml runs Azurite, three workers and the dashboard from it;
# docs/operations.md explains the settings.

FROM golang:1.26 AS build
WORKDIR /src
# Modules first, so that a change of code reuses the downloaded modules.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# Static binaries: the runtime image needs no C library of a given version.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ ./cmd/worker ./cmd/azdurable

FROM debian:trixie-slim
# ca-certificates for https to Azure Storage; curl for health checks.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin azdurable
COPY --from=build /out/worker /out/azdurable /usr/local/bin/
USER 10001:10001
# The worker's HTTP server (/healthz, /readyz, /metrics, /status). Outside a
# container it listens on loopback; here the container's network is the
# boundary, and publishing a port is a choice of the one who runs it.
ENV AZDURABLE_HTTP=0.0.0.0:8080
EXPOSE 8080
# The worker drains on SIGTERM for up to -drain-timeout (30s) and then
# releases its partitions: give it that long (docker stop -t 45).
STOPSIGNAL SIGTERM
CMD ["worker"]
