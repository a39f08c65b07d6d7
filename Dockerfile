# Build: docker build -t alliance-glance .
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY mock ./mock
COPY benches ./benches
COPY tests ./tests
COPY config ./config
RUN cargo build --release --locked

FROM debian:bookworm-slim
RUN useradd --system --no-create-home alliance
COPY --from=build /src/target/release/alliance-glance /usr/local/bin/alliance-glance
USER alliance
ENTRYPOINT ["/usr/local/bin/alliance-glance"]
CMD ["serve", "--config", "/etc/alliance-glance/alliance-glance.toml"]
