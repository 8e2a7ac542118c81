#!/usr/bin/env bash
# Runs the real `railpack prepare` offline, isolated per run (docs/peers.md, "railpack: prepare offline").
#
# Usage: scripts/peers/railpack-prepare.sh [prepare] APP_DIR [railpack prepare flags...]
#   e.g. scripts/peers/railpack-prepare.sh app --plan-out plan.json --info-out info.json --hide-pretty-plan
#
# railpack v0.15.0 keeps mise under the constant /tmp/railpack/mise (core/mise/mise.go `InstallDir`; no flag or
# environment variable moves it) and downloads mise from GitHub unless /tmp/railpack/mise/mise-2025.11.8 exists.
# So each run gets a fresh directory of its own holding
#   mise/mise-2025.11.8                 -> the `mise` peer (npm @jdxcode/mise-linux-x64, integrity-checked)
#   mise/cache/<tool>/remote_versions-<key>.msgpack.z   seeded from tools/mise-remote-versions.txt
# and railpack sees it at /tmp/railpack:
#   unshare (default when it works: root or CAP_SYS_ADMIN): a private mount namespace with that directory
#           bind-mounted over /tmp/railpack, so parallel runs do not see each other (an empty /tmp/railpack
#           directory is left on the host as the mount point);
#   lock    (fallback, or KIBASHIP_RAILPACK_ISOLATION=lock): runs one at a time under flock(/tmp/railpack.lock)
#           (unshare runs hold it shared, so the two modes never mix),
#           /tmp/railpack being a symlink to the run's directory for the duration; refuses to touch a
#           /tmp/railpack that is not empty or one of ours.
# The directory is removed afterwards (KIBASHIP_RAILPACK_KEEP=1 keeps it and prints its path).
#
# Environment: RAILPACK_BIN, MISE_BIN (default: the peers in the cache), KIBASHIP_RAILPACK_ISOLATION
# (unshare|lock|auto), KIBASHIP_RAILPACK_TIMEOUT (seconds, default 120: an unseeded tool makes mise retry the
# network for minutes). Exit status: railpack's (124 on timeout, 2 for bad usage or a missing peer).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
list="$repo_root/tools/peers.txt"
seeds="$repo_root/tools/mise-remote-versions.txt"
cache="${KIBASHIP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kibaship}/peers"
# The mise version railpack v0.15.0 looks for (core/mise/install.go `miseVersion`); it does not check the
# version of the file it finds there.
railpack_mise_version="2025.11.8"
fixed_dir="/tmp/railpack"

die() { echo "railpack-prepare: $*" >&2; exit 2; }

# railpack's own command line (`railpack prepare APP_DIR ...`) works too, so this script can stand where a
# `railpack` program is expected (`kibaship-step prepare --railpack scripts/peers/railpack-prepare.sh`). An app
# directory named `prepare` is then given as `./prepare`.
if [ "${1:-}" = prepare ] && [ "$#" -ge 2 ]; then shift; fi
[ "$#" -ge 1 ] || die "usage: $0 [prepare] APP_DIR [railpack prepare flags...]"
app="$1"; shift
[ -d "$app" ] || die "app directory $app does not exist"

peer_path() {
  local name="$1" line version binaries
  line="$(awk -v n="$name" '$1 == n && $1 !~ /^#/ { print; exit }' "$list")"
  [ -n "$line" ] || die "peer $name is not in tools/peers.txt"
  version="$(awk '{ print $2 }' <<<"$line")"
  binaries="$(awk '{ print $3 }' <<<"$line")"
  local path="$cache/$name-$version/${binaries%%,*}"
  [ -x "$path" ] && [ -f "$cache/$name-$version/.kibaship-built" ] ||
    die "peer $name $version is not built ($path missing): run \`make peers\`"
  printf '%s\n' "$path"
}
railpack="${RAILPACK_BIN:-$(peer_path railpack)}"
mise="${MISE_BIN:-$(peer_path mise)}"

run_dir="$(mktemp -d "${TMPDIR:-/tmp}/kibaship-railpack-XXXXXX")"
chmod 755 "$run_dir"
cleanup() {
  if [ "${KIBASHIP_RAILPACK_KEEP:-0}" = 1 ]; then echo "railpack-prepare: kept $run_dir" >&2; else rm -rf "$run_dir"; fi
}
trap cleanup EXIT

mkdir -p "$run_dir/mise"
ln -s "$mise" "$run_dir/mise/mise-$railpack_mise_version"
# Seed mise's remote-versions cache: one zlib-compressed msgpack array of strings per tool.
python3 - "$seeds" "$run_dir/mise/cache" <<'PY'
import os, struct, sys, zlib

def pack_str(s):
    b = s.encode()
    if len(b) < 32:
        return bytes([0xA0 | len(b)]) + b
    return b"\xd9" + bytes([len(b)]) + b

def pack_array(items):
    n = len(items)
    head = bytes([0x90 | n]) if n < 16 else b"\xdc" + struct.pack(">H", n)
    return head + b"".join(pack_str(i) for i in items)

seeds, out = sys.argv[1], sys.argv[2]
for raw in open(seeds):
    line = raw.split("#", 1)[0].split()
    if not line:
        continue
    tool, key, versions = line[0], line[1], line[2:]
    os.makedirs(os.path.join(out, tool), exist_ok=True)
    with open(os.path.join(out, tool, f"remote_versions-{key}.msgpack.z"), "wb") as f:
        f.write(zlib.compress(pack_array(versions)))
PY

isolation="${KIBASHIP_RAILPACK_ISOLATION:-auto}"
if [ "$isolation" = auto ]; then
  if unshare -m --propagation private true 2>/dev/null; then isolation=unshare; else isolation=lock; fi
fi
timeout_s="${KIBASHIP_RAILPACK_TIMEOUT:-120}"

case "$isolation" in
  unshare)
    # Shared with other unshare runs, exclusive against a lock-mode run (which replaces /tmp/railpack).
    exec 9>"$fixed_dir.lock"
    flock -s 9
    [ -d "$fixed_dir" ] || mkdir -p "$fixed_dir"
    rc=0
    timeout "$timeout_s" unshare -m --propagation private \
      sh -c 'mount --bind "$1" "$2" && shift 2 && exec "$@"' sh "$run_dir" "$fixed_dir" \
      "$railpack" prepare "$app" "$@" || rc=$?
    exit "$rc"
    ;;
  lock)
    exec 9>"$fixed_dir.lock"
    flock 9
    if [ -L "$fixed_dir" ]; then
      case "$(readlink "$fixed_dir")" in "${TMPDIR:-/tmp}"/kibaship-railpack-*) rm -f "$fixed_dir" ;; esac
    elif [ -d "$fixed_dir" ]; then
      rmdir "$fixed_dir" 2>/dev/null || die "$fixed_dir exists and is not empty (another railpack's?); lock mode leaves it alone"
    fi
    [ ! -e "$fixed_dir" ] || die "$fixed_dir exists and is not ours; lock mode leaves it alone"
    ln -s "$run_dir" "$fixed_dir"
    rc=0
    timeout "$timeout_s" "$railpack" prepare "$app" "$@" || rc=$?
    rm -f "$fixed_dir"
    exit "$rc"
    ;;
  *) die "KIBASHIP_RAILPACK_ISOLATION must be unshare, lock or auto, not $isolation" ;;
esac
