# syntax=docker/dockerfile:1
# kibaship image: `kibaverify` (CLI, gates, verification) and `kibaship-step` (Tekton step driver).
# Multi-stage: build with the Rust toolchain, run on distroless (glibc, no shell, no package manager) as non-root.
# The Tekton tasks copy /usr/local/bin/kibaship-step into a shared emptyDir in a first step (see docs/tekton.md).

ARG RUST_VERSION=1.95
FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
# aws-lc-rs (rustls' crypto provider) needs cmake and a C compiler to build.
RUN apt-get update && apt-get install -y --no-install-recommends cmake clang && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p kibaverify -p kibaship-step \
 && install -D -m 0755 target/release/kibaverify /out/kibaverify \
 && install -D -m 0755 target/release/kibaship-step /out/kibaship-step

FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="kibaship" \
      org.opencontainers.image.description="kibaverify and kibaship-step" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/kibaverify /out/kibaship-step /usr/local/bin/
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/kibaverify"]
