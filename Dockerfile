# The services image compose.yaml runs (`ledgerline:dev`): every binary the distributed
# deployment needs, in one image. Build it from the repository's root:
#
#     docker build -t ledgerline:dev .
#
# No Docker engine runs on the project's build machines, so CI does not build this image;
# tests/python/test_dockerfile.py checks that it installs every binary compose.yaml runs, built
# by the packages that define them, with a Rust at least the workspace's `rust-version`.

# Build stage: Debian's C toolchain builds librdkafka from source (rdkafka-sys) and SQLite
# (bundled); protoc comes from the protoc-bin-vendored crate.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
        -p ledgerline-ingester -p ledgerline-ledger -p ledgerline-cli --bins \
    && mkdir -p /out \
    && cp target/release/ledgerline-ingester target/release/ledgerline-ledger \
          target/release/ledgerline /out/

# Runtime stage: glibc and zlib (linked dynamically) from the same Debian release, CA
# certificates for TLS to Stripe and to a TLS-terminated database or broker, no shell tools
# beyond the base image's; the services run as an unprivileged user.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home ledgerline
COPY --from=build /out/ledgerline-ingester /out/ledgerline-ledger /out/ledgerline /usr/local/bin/
USER ledgerline
# The ingester's webhooks, the ledger's gRPC and metrics (compose.yaml sets the addresses).
EXPOSE 8080 50051 9466
CMD ["ledgerline", "--help"]
