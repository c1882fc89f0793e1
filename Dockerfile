# Cistern: the Zaqar v2 API over an object store.
#
#   docker build -t cistern .
#   docker run -p 127.0.0.1:8888:8888 -v cistern-data:/data cistern
#
# With no arguments the container serves on 0.0.0.0:8888 from the fs store
# in /data, without authentication (it says so at start-up): publish the
# port only where an authenticating proxy or trusted clients reach it. Every flag and CISTERN_* variable of docs/configuration.md works:
# arguments replace the default command, e.g.
#   docker run -e CISTERN_SWIFT_AUTH_URL=... -e CISTERN_SWIFT_USER=... \
#     -e CISTERN_SWIFT_KEY=... cistern -driver swift

FROM docker.io/library/golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/cistern ./cmd/cistern

FROM docker.io/library/debian:bookworm-slim
# ca-certificates for https Swift, Keystone and S3 endpoints; curl for the
# health check.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin cistern \
 && mkdir /data && chown cistern:cistern /data
COPY --from=build /out/cistern /usr/local/bin/cistern
USER cistern:cistern
WORKDIR /data
VOLUME /data
EXPOSE 8888
# So that a command replacing the default one still listens beyond the
# container; -listen (or a -e CISTERN_LISTEN) overrides it.
ENV CISTERN_LISTEN=0.0.0.0:8888
# GET /readyz is 204 when every pool's store answers, 503 when one does
# not; it needs no headers and no token (auth_strategy keystone too). The
# port is CISTERN_LISTEN's (a -listen flag in the command is not seen
# here). The start period covers start_timeout: start-up waits that long
# for a store.
HEALTHCHECK --interval=15s --timeout=6s --start-period=40s --retries=3 \
  CMD curl -fsS -o /dev/null "http://127.0.0.1:${CISTERN_LISTEN##*:}/readyz" || exit 1
ENTRYPOINT ["cistern"]
CMD ["-listen", "0.0.0.0:8888", "-data", "/data"]
