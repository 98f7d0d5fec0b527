# qwen-gateway container image: built with the official Rust image, run on distroless "cc"
# (glibc, libgcc, CA certificates; no shell, no package manager) as a non-root user.
#
#   docker build -t qwen-gateway .
#   docker run --rm -p 127.0.0.1:8080:8080 -e DASHSCOPE_API_KEY -v qwen-data:/data qwen-gateway
#
# Keys come only from the environment or mounted secret files (DASHSCOPE_API_KEY_FILE=...),
# never from the image. See docs/deploy.md.

ARG RUST_VERSION=1.96

FROM rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src
# The workspace manifest names mock/ and bench/, so cargo needs them to load it; only the
# gateway binary is built. config/default.toml is compiled in (include_str!).
COPY Cargo.toml Cargo.lock ./
COPY mock ./mock
COPY bench ./bench
COPY config/default.toml ./config/default.toml
COPY src ./src
# Cache mounts keep the registry and compiled dependencies between builds (BuildKit). The
# binary is copied out in the same step because the target cache is not part of the layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --package qwen-gateway --bin qwen-gateway \
    && install -D -m 0755 target/release/qwen-gateway /out/qwen-gateway \
    && mkdir -p /out/data

# bookworm-based, like the build stage, so the glibc the binary links against matches.
FROM gcr.io/distroless/cc-debian12:nonroot
WORKDIR /app
COPY --from=build /out/qwen-gateway /usr/local/bin/qwen-gateway
# Read as the ./config/default.toml layer (same as the compiled-in defaults): the reference
# an operator can read in the image, or mount over.
COPY config/default.toml /app/config/default.toml
# Owned by the runtime user so a fresh named volume mounted here is writable.
COPY --from=build --chown=65532:65532 /out/data /data

# Configuration through the environment (highest layer): listen on all interfaces inside
# the container, and keep the embedded store on the volume.
ENV QWEN_GATEWAY__SERVER__LISTEN=0.0.0.0:8080 \
    QWEN_GATEWAY__STORE__URL=sqlite:///data/qwen-gateway.db
VOLUME ["/data"]
EXPOSE 8080
USER 65532:65532

# No curl in the image: the binary probes its own /healthz (2 s timeout, exit 0/1).
HEALTHCHECK --interval=15s --timeout=5s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/qwen-gateway", "healthcheck"]
# SIGTERM starts the drain: no new connections, open streams get server.shutdown_grace.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/qwen-gateway"]
CMD ["serve"]
