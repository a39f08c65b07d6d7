# The production image: the facade without the demo feature (no mock code),
# run as a non-root user.
#   docker build -t alliance-glance .
#   docker build --build-arg ALLIANCE_GLANCE_COMMIT=$(git rev-parse --short=12 HEAD) -t alliance-glance .
# The demo image (`demo` and `mock-glance`; docker-compose.yml runs its mock Glance):
#   docker build --target demo -t alliance-glance-demo .
FROM rust:1.95-slim-bookworm AS source
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY mock ./mock
COPY benches ./benches
COPY tests ./tests
COPY config ./config
# .git is not in the build context: --version names this commit (or "unknown").
ARG ALLIANCE_GLANCE_COMMIT=unknown
ENV ALLIANCE_GLANCE_COMMIT=${ALLIANCE_GLANCE_COMMIT}

FROM source AS build
RUN cargo build --release --locked --no-default-features

FROM source AS build-demo
RUN cargo build --release --locked

FROM debian:bookworm-slim AS runtime
RUN useradd --system --no-create-home --shell /usr/sbin/nologin alliance
USER alliance
ENTRYPOINT ["/usr/local/bin/alliance-glance"]

FROM runtime AS demo
COPY --from=build-demo /src/target/release/alliance-glance /usr/local/bin/alliance-glance
CMD ["demo", "--listen", "0.0.0.0:8080"]

# The last stage is what `docker build` builds without --target.
FROM runtime AS production
COPY --from=build /src/target/release/alliance-glance /usr/local/bin/alliance-glance
CMD ["serve", "--config", "/etc/alliance-glance/alliance-glance.toml"]
