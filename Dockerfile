# tunnelgate container image.
#
#   docker build -t tunnelgate .            (or let docker-compose.yml build it)
#
# Needs BuildKit (the default builder since Docker Engine 23) for the cache mounts.
# The runtime image has no shell and no package manager; the process runs as uid/gid
# 65532 ("nonroot" in distroless images).

# Build and runtime stages must share a Debian release (the binary links against its
# glibc): bookworm here and cc-debian12 below, or trixie with cc-debian13.
ARG RUST_VERSION=1.95

# --- build -------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src

# .dockerignore keeps secrets, .env, target/ and docs out of this context.
COPY . .

# The registry and target/ caches persist between builds on the same host; the binary
# is copied out of the cache mount so the next stage can see it.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin tunnelgate \
    && install -D -m 0755 target/release/tunnelgate /out/tunnelgate

# state_dir must exist in the image, owned by the runtime user: Docker seeds a new named
# volume from the image's directory, ownership included, so the volume is writable.
RUN install -d -m 0750 /out/state

# --- runtime -----------------------------------------------------------------------
# glibc, libgcc and CA certificates; Debian 12, the same glibc as the build stage.
FROM gcr.io/distroless/cc-debian12:nonroot

LABEL org.opencontainers.image.title="tunnelgate" \
      org.opencontainers.image.description="MCP server for an internal REST API behind Cloudflare Access" \
      org.opencontainers.image.licenses="Apache-2.0"

COPY --from=build /out/tunnelgate /usr/local/bin/tunnelgate
COPY --from=build --chown=65532:65532 /out/state /var/lib/tunnelgate

USER 65532:65532

# 8080: MCP listener (server.bind), the only port cloudflared forwards to.
# 9090: admin listener (admin.bind): /healthz, /readyz, /metrics; never tunnelled.
EXPOSE 8080 9090

# `tunnelgate healthcheck` GETs http://127.0.0.1:<admin.bind port>/readyz and exits 0
# only on HTTP 200 (the Access signing keys are loaded).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["/usr/local/bin/tunnelgate", "healthcheck"]

ENTRYPOINT ["/usr/local/bin/tunnelgate"]
CMD ["serve"]
