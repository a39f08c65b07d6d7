# The production image: the facade without the demo feature (no mock code),
# run as a non-root user (uid 10001).
#   docker build -t alliance-glance .
#   docker build --build-arg ALLIANCE_GLANCE_COMMIT=$(git rev-parse --short=12 HEAD) -t alliance-glance .
# The demo image (`demo`, `mock-glance`, and the compose demo's copy_from
# source; docker-compose.yml runs it next to the production image):
#   docker build --target demo -t alliance-glance-demo .
# Both build on the official images as they are (fully qualified names, so
# podman needs no short-name configuration); RUST_IMAGE and RUNTIME_IMAGE
# replace them (scripts/container-check.sh passes its stand-ins so when no
# registry is reachable). scripts/container-check.sh builds both, runs the
# compose stack and checks them: run it after any change to this file, the
# compose files or the dependencies.
ARG RUST_IMAGE=docker.io/library/rust:1.95-slim-bookworm
ARG RUNTIME_IMAGE=docker.io/library/debian:bookworm-slim

FROM ${RUST_IMAGE} AS toolchain
# tikv-jemalloc-sys builds jemalloc with its configure script and make; the
# slim image has gcc and libc6-dev but no make.
RUN apt-get update \
    && apt-get install -y --no-install-recommends make \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Stripped binaries (no symbol table; the release profile has no debug
# information anyway): the images carry about a third less.
ENV CARGO_PROFILE_RELEASE_STRIP=symbols

# The dependencies of both binaries, compiled once from the manifests alone
# (empty sources stand in for the project's): this layer is rebuilt only
# when Cargo.toml or Cargo.lock change, and serves both images. The two
# feature sets differ only in serde_json's float_roundtrip (and
# tracing-subscriber above it) and the mock crate's own dependencies. The
# project's own crates built from the empty sources are then forgotten, or
# the real sources (whose times are older) would look built already.
FROM toolchain AS dependencies
COPY Cargo.toml Cargo.lock ./
COPY mock/Cargo.toml mock/
RUN mkdir -p src mock/src \
    && echo 'fn main() {}' > build.rs \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs mock/src/lib.rs \
    && cargo build --release --locked --no-default-features \
    && cargo build --release --locked \
    && cargo clean --release --locked -p alliance-glance -p openstack-mock \
    && rm -r build.rs src mock/src

FROM dependencies AS source
COPY build.rs ./
COPY src ./src
COPY mock/src ./mock/src
# .git is not in the build context: --version names this commit (or "unknown").
ARG ALLIANCE_GLANCE_COMMIT=unknown
ENV ALLIANCE_GLANCE_COMMIT=${ALLIANCE_GLANCE_COMMIT}

FROM source AS build
RUN cargo build --release --locked --no-default-features \
    && install -D target/release/alliance-glance /out/alliance-glance

FROM source AS build-demo
RUN cargo build --release --locked \
    && install -D target/release/alliance-glance /out/alliance-glance
# The compose demo's copy_from source: the standard library only, no cargo.
COPY scripts/container/copy-from-source.rs /tmp/
RUN rustc --edition 2024 -C opt-level=2 -C strip=symbols -o /out/copy-from-source /tmp/copy-from-source.rs

FROM ${RUNTIME_IMAGE} AS runtime
# A numeric USER lets Kubernetes' runAsNonRoot verify it is not root; 10001
# is outside the system and the usual login ranges.
RUN groupadd --gid 10001 alliance \
    && useradd --uid 10001 --gid alliance --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin --no-log-init alliance
USER 10001:10001
ENTRYPOINT ["/usr/local/bin/alliance-glance"]

FROM runtime AS demo
COPY --from=build-demo /out/ /usr/local/bin/
CMD ["demo", "--listen", "0.0.0.0:8080"]

# The last stage is what `docker build` builds without --target.
FROM runtime AS production
COPY --from=build /out/alliance-glance /usr/local/bin/alliance-glance
CMD ["serve", "--config", "/etc/alliance-glance/alliance-glance.toml"]
