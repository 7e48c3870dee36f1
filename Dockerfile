# syntax=docker/dockerfile:1
# Build stage: the same bootstrap script the README and CI use installs the
# toolchain pieces (wasm32 target, cargo-leptos, wasm-bindgen, wasm-opt).
FROM rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs npm \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Tools first, so that a code change does not reinstall them.
COPY Cargo.toml Cargo.lock ./
COPY scripts/bootstrap.sh scripts/bootstrap.sh
RUN scripts/bootstrap.sh
COPY . .
RUN make build

# Runtime stage: only the binary and the built site, as a non-root user.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /data --create-home batchboard
COPY --from=build /src/target/release/batchboard /app/batchboard
# The content hashes of the site's file names: read from beside the binary.
COPY --from=build /src/target/release/hash.txt /app/hash.txt
COPY --from=build /src/target/site /app/site
ENV BATCHBOARD_ADDR=0.0.0.0:3000 \
    BATCHBOARD_DATA_DIR=/data \
    LEPTOS_SITE_ROOT=/app/site \
    BATCHBOARD_LOG_FORMAT=json
USER batchboard
WORKDIR /data
VOLUME /data
EXPOSE 3000
# /healthz answers without a session; bash's /dev/tcp needs no curl in the image.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/3000 && printf 'GET /healthz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["/app/batchboard"]
CMD ["serve"]
