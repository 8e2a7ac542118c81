#!/usr/bin/env bash
# make images: the kibaship image (kibaverify, kibaship-step, kibaship-webhook) built without Docker: static
# binaries (glibc static-pie, as the Dockerfile builds them) in an OCI image written with umoci, optionally pushed
# with skopeo. The Dockerfile stays for users with Docker; both give the same file layout, user, entrypoint and
# labels (crates/step/tests/image_layout.rs compares this script's image with the Dockerfile's final stage).
#
#   scripts/images.sh [--bin-dir DIR] [--layout DIR] [--tag TAG] [--push REF] [--insecure]
#     --bin-dir DIR  take the three binaries from DIR instead of building them (cargo build --release, static)
#     --layout DIR   the OCI layout to write (default target/images/oci); the image is tagged TAG in it
#     --tag TAG      default: the workspace version
#     --push REF     also copy the image to REF (registry/repository:tag) with skopeo
#     --insecure     push over plain HTTP / without TLS verification (local test registries only)
set -euo pipefail
cd "$(dirname "$0")/.."

BINARIES=(kibaverify kibaship-step kibaship-webhook)
bin_dir=""
layout="target/images/oci"
tag="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
push=""
tls=(--dest-tls-verify=true)
while [ $# -gt 0 ]; do
  case "$1" in
    --bin-dir) bin_dir="$2"; shift 2 ;;
    --layout) layout="$2"; shift 2 ;;
    --tag) tag="$2"; shift 2 ;;
    --push) push="$2"; shift 2 ;;
    --insecure) tls=(--dest-tls-verify=false); shift ;;
    *) echo "images.sh: unknown argument $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
for tool in umoci skopeo; do
  command -v "$tool" >/dev/null || { echo "images.sh: $tool is missing: apt-get install $tool, or run make deps" >&2; exit 2; }
done

if [ -z "$bin_dir" ]; then
  # As the Dockerfile: `--target` keeps build scripts dynamically linked while the binaries are static.
  triple=x86_64-unknown-linux-gnu
  RUSTFLAGS='-C target-feature=+crt-static' \
    cargo build --release --locked --target "$triple" -p kibaverify -p kibaship-step -p kibaship-webhook
  bin_dir="target/$triple/release"
fi
for b in "${BINARIES[@]}"; do
  [ -x "$bin_dir/$b" ] || { echo "images.sh: $bin_dir/$b is missing or not executable" >&2; exit 2; }
done

work="$(mktemp -d "${TMPDIR:-/tmp}/kibaship-images-XXXXXX")"
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"
# What the Dockerfile's base (distroless static, nonroot) gives the binaries: users, CA bundle, /tmp, a home.
install -d -m 0755 "$root/usr/local/bin" "$root/etc/ssl/certs" "$root/home/nonroot"
install -d -m 1777 "$root/tmp"
for b in "${BINARIES[@]}"; do
  install -m 0755 "$bin_dir/$b" "$root/usr/local/bin/$b"
done
install -m 0644 /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
nobody:x:65534:
nonroot:x:65532:
EOF
chmod 0644 "$root/etc/passwd" "$root/etc/group"

owner=(--owner=0 --group=0)
if [ "$(id -u)" = 0 ]; then
  # As root, ownership is kept: the home belongs to the user the image runs as, as in distroless.
  chown -R 0:0 "$root" && chown 65532:65532 "$root/home/nonroot"
  owner=()
fi

revision="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
created="$(date -u -d "@${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}" +%Y-%m-%dT%H:%M:%SZ)"
mkdir -p "$(dirname "$layout")"
[ -f "$layout/index.json" ] || umoci init --layout "$layout"
image="$layout:$tag"
umoci new --image "$image"
umoci config --image "$image" --os linux --architecture amd64 \
  --config.user 65532:65532 \
  --config.entrypoint /usr/local/bin/kibaverify \
  --config.env PATH=/usr/local/bin:/usr/bin:/bin \
  --config.env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
  --config.label org.opencontainers.image.title=kibaship \
  --config.label "org.opencontainers.image.description=kibaverify, kibaship-step and kibaship-webhook" \
  --config.label org.opencontainers.image.licenses=Apache-2.0 \
  --config.label "org.opencontainers.image.revision=$revision" \
  --config.label "org.opencontainers.image.created=$created" \
  --config.label "org.opencontainers.image.version=$tag"
# GNU tar writes the layer, umoci compresses and adds it: umoci 0.4.7's own `insert` (Debian 12) ends the tar
# stream without the last entry's padding and the end-of-archive blocks.
tar --create --file "$work/layer.tar" --numeric-owner "${owner[@]}" --sort=name --directory "$root" .
umoci raw add-layer --image "$image" "$work/layer.tar"
umoci gc --layout "$layout"
echo "images.sh: $image"
if [ -n "$push" ]; then
  skopeo copy --quiet "${tls[@]}" "oci:$layout:$tag" "docker://$push"
  echo "images.sh: pushed $push"
fi
