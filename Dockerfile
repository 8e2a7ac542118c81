# syntax=docker/dockerfile:1
# kibaship image: `kibaverify` (CLI, gates, verification), `kibaship-step` (Tekton step driver) and
# `kibaship-webhook` (the admission webhook; deploy/ runs it with `command: [kibaship-webhook, serve, ...]`).
#
# Multi-stage: build with the Rust toolchain, run on distroless static (no shell, no libc, no package manager)
# as non-root. Both binaries are linked statically (glibc static-pie): the railpack Tasks copy kibaship-step
# out of this image into a shared emptyDir (`kibaship-step install`) and run it inside the Railpack (Debian)
# and rootless BuildKit (Alpine) images, so it must not depend on their libc. See docs/tekton.md.

ARG RUST_VERSION=1.95
FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
ARG TARGETARCH=amd64
# aws-lc-rs (rustls' crypto provider) needs cmake and a C compiler to build.
RUN apt-get update && apt-get install -y --no-install-recommends cmake clang && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
# `--target` keeps build scripts dynamically linked while the binaries are static.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    case "$TARGETARCH" in amd64) triple=x86_64-unknown-linux-gnu ;; arm64) triple=aarch64-unknown-linux-gnu ;; \
      *) echo "unsupported TARGETARCH $TARGETARCH" >&2; exit 1 ;; esac \
 && RUSTFLAGS='-C target-feature=+crt-static' \
    cargo build --release --locked --target "$triple" -p kibaverify -p kibaship-step -p kibaship-webhook \
 && install -D -m 0755 "target/$triple/release/kibaverify" /out/kibaverify \
 && install -D -m 0755 "target/$triple/release/kibaship-step" /out/kibaship-step \
 && install -D -m 0755 "target/$triple/release/kibaship-webhook" /out/kibaship-webhook

FROM gcr.io/distroless/static-debian12:nonroot
LABEL org.opencontainers.image.title="kibaship" \
      org.opencontainers.image.description="kibaverify, kibaship-step and kibaship-webhook" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/kibaverify /out/kibaship-step /out/kibaship-webhook /usr/local/bin/
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/kibaverify"]
