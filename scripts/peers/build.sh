#!/usr/bin/env bash
# Builds the pinned Go peers listed in tools/peers.txt into the cache outside the clone:
#   ${KIBASHIP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kibaship}/peers/<name>-<version>/
# with `GOBIN=<that dir> go install <package>@<version> ...`, one build at a time under `nice`.
#
# Usage: scripts/peers/build.sh [--here] [NAME...]
#   NAME...   build only these peers (default: every peer in the list)
#   --here    only the peers marked `here=yes` (the ones `make peers-smoke` needs)
# Environment:
#   PEERS_RETRY=1   retry peers whose earlier build failed (failures are remembered so a slow failing
#                   build is not repeated by every `make test`)
#   PEERS_NICE=N    niceness for the Go builds (default 15)
#
# Prints a table (peer, version, status, seconds, reason). Exits 1 if a peer marked `here=yes` that was
# asked for could not be built; peers marked `here=no` are tried and reported but do not fail the run.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
list="$repo_root/tools/peers.txt"
cache="${KIBASHIP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kibaship}/peers"
nice_level="${PEERS_NICE:-15}"

only_here=0
wanted=()
for arg in "$@"; do
  case "$arg" in
    --here) only_here=1 ;;
    -*) echo "build.sh: unknown option $arg" >&2; exit 2 ;;
    *) wanted+=("$arg") ;;
  esac
done

command -v go >/dev/null || { echo "peers: the 'go' command is not on PATH (Go >= 1.26 is needed)" >&2; exit 1; }
mkdir -p "$cache/logs" "$cache/failed"

# Validate requested names against the list, so a typo fails loudly instead of building nothing.
if [ "${#wanted[@]}" -gt 0 ]; then
  for w in "${wanted[@]}"; do
    awk -v n="$w" '$1 == n { found = 1 } END { exit !found }' <(grep -v '^[[:space:]]*#' "$list") ||
      { echo "peers: '$w' is not in tools/peers.txt" >&2; exit 2; }
  done
fi

rows=()
hard_failures=0

# Reason for a failed build: the Go error lines of the log, flattened to one line.
failure_reason() {
  local log="$1" lines
  lines="$(grep -E '^(go: |# |.*: (error|undefined|cannot)|.*[Ff]orbidden|.*not available)' "$log" | head -n 3 || true)"
  [ -n "$lines" ] || lines="$(grep -v '^[[:space:]]*$' "$log" | tail -n 3)"
  printf '%s' "$lines" | tr '\n\t' '  ' | sed -e 's/  */ /g' | cut -c1-300
}

while read -r name version binaries here packages; do
  [ -n "${name:-}" ] || continue
  case "$name" in \#*) continue ;; esac
  if [ "${#wanted[@]}" -gt 0 ]; then
    keep=0; for w in "${wanted[@]}"; do [ "$w" = "$name" ] && keep=1; done
    [ "$keep" = 1 ] || continue
  fi
  [ "$only_here" = 0 ] || [ "$here" = yes ] || continue

  dir="$cache/$name-$version"
  stamp="$dir/.kibaship-built"
  log="$cache/logs/$name-$version.log"

  # What was built: the line's binaries and packages (with build settings) and, for a module of this repo,
  # its files. A peer is rebuilt when this changes (same version, new source or flags).
  module_files=""
  for p in $packages; do
    case "$p" in
      ./*) module_files="$(cd "$repo_root/${p#./}" && find . -type f | LC_ALL=C sort | xargs sha256sum)" ;;
    esac
  done
  src_hash="$(printf '%s\n%s\n' "$binaries $packages" "$module_files" | sha256sum | cut -c1-16)"

  # A remembered failure is keyed by the whole line, so editing the line retries it.
  failed="$cache/failed/$name-$version-$(printf '%s' "$name $version $binaries $packages $src_hash" | sha256sum | cut -c1-12)"

  all_present=1
  IFS=',' read -r -a bins <<<"$binaries"
  for b in "${bins[@]}"; do [ -x "$dir/$b" ] || all_present=0; done

  if [ "$all_present" = 1 ] && [ -f "$stamp" ] && [ "$(cat "$dir/.kibaship-source" 2>/dev/null)" = "$src_hash" ]; then
    if [ "$here" = yes ]; then note=""; else note="built, but does not run here (here=no): see docs/peers.md"; fi
    rows+=("$name|$version|cached|$(cat "$stamp")|$note")
    continue
  fi
  if [ -f "$failed" ] && [ "${PEERS_RETRY:-0}" != 1 ]; then
    rows+=("$name|$version|FAILED (earlier; PEERS_RETRY=1 retries)|-|$(cat "$failed")")
    [ "$here" = yes ] && hard_failures=$((hard_failures + 1))
    continue
  fi

  # An npm peer (`npm:<package> sha512-<base64>`): the package's tarball at `version`, fetched with `npm pack`,
  # must have that SHA-512 (the registry's `dist.integrity`, as package-lock.json records it); each binary is
  # taken from the package's bin/ directory. No Go build.
  case "$packages" in
    npm:*)
      npm_pkg="" integrity=""
      for p in $packages; do
        case "$p" in npm:*) npm_pkg="${p#npm:}" ;; sha512-*) integrity="$p" ;; esac
      done
      reason=""
      [ -n "$integrity" ] || reason="no sha512-... integrity pinned after npm:$npm_pkg in tools/peers.txt"
      [ -n "$reason" ] || command -v npm >/dev/null || reason="the 'npm' command is not on PATH"
      start=$(date +%s)
      if [ -z "$reason" ]; then
        echo "peers: fetching $name $version (npm $npm_pkg@$version, integrity checked), log: $log" >&2
        tmp="$(mktemp -d "$cache/.build-$name-XXXXXX")"
        chmod 755 "$tmp"
        if (cd "$tmp" && npm pack --silent "$npm_pkg@$version") >"$log" 2>&1; then
          tgz="$(find "$tmp" -maxdepth 1 -name '*.tgz' | head -n 1)"
          got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
          echo "integrity of $(basename "$tgz"): $got (pinned: $integrity)" >>"$log"
          if [ "$got" != "$integrity" ]; then
            reason="integrity mismatch for npm $npm_pkg@$version: got $got, tools/peers.txt pins $integrity"
          else
            mkdir "$tmp/.unpack"
            tar -xzf "$tgz" -C "$tmp/.unpack" >>"$log" 2>&1 || reason="cannot unpack $tgz"
            for b in "${bins[@]}"; do
              [ -n "$reason" ] || [ -f "$tmp/.unpack/package/bin/$b" ] || reason="npm $npm_pkg@$version has no bin/$b"
              [ -n "$reason" ] || install -m 755 "$tmp/.unpack/package/bin/$b" "$tmp/$b"
            done
            rm -rf "$tmp/.unpack" "$tgz"
          fi
        else
          reason="npm pack $npm_pkg@$version failed: $(grep -v '^[[:space:]]*$' "$log" | tail -n 2 | tr '\n' ' ' | cut -c1-200)"
        fi
      fi
      secs=$(( $(date +%s) - start ))
      if [ -z "$reason" ]; then
        echo "$secs" >"$tmp/.kibaship-built"
        printf '%s\n' "$src_hash" >"$tmp/.kibaship-source"
        rm -rf "$dir"; mv "$tmp" "$dir"; rm -f "$failed"
        if [ "$here" = yes ]; then note=""; else note="built, but does not run here (here=no): see docs/peers.md"; fi
        rows+=("$name|$version|built|$secs|$note")
      else
        [ -z "${tmp:-}" ] || rm -rf "$tmp"
        echo "$reason (log: $log)" >"$failed"
        rows+=("$name|$version|FAILED|$secs|$reason (log: $log)")
        [ "$here" = yes ] && hard_failures=$((hard_failures + 1))
      fi
      tmp=""
      continue
      ;;
  esac

  # A package list that starts with ./dir builds inside that module of this repo (its go.mod pins the
  # upstream module at `version`): `go install <packages or .>` there. Otherwise `go install pkg@version`.
  moddir=""
  targets=()
  build_env=()
  goflags_extra=()
  for p in $packages; do
    case "$p" in
      GOFLAGS+=*) goflags_extra+=("${p#GOFLAGS+=}") ;; # e.g. GOFLAGS+=-ldflags=-X=pkg.Version=v1
      [A-Z]*=*) build_env+=("$p") ;; # e.g. GOTOOLCHAIN=go1.27.3 for modules that need a newer Go
      ./*) moddir="$repo_root/${p#./}" ;;
      *) if [ -n "$moddir" ]; then targets+=("$p"); else targets+=("$p@$version"); fi ;;
    esac
  done
  if [ -n "$moddir" ]; then
    [ "${#targets[@]}" -gt 0 ] || targets=(.)
    if ! grep -Eq "^[[:space:]]*(require[[:space:]]+)?[^[:space:]]+[[:space:]]+$version([[:space:]]|\$)" "$moddir/go.mod"; then
      reason="$moddir/go.mod does not require version $version (tools/peers.txt and go.mod disagree)"
      rows+=("$name|$version|FAILED|-|$reason")
      [ "$here" = yes ] && hard_failures=$((hard_failures + 1))
      continue
    fi
  fi
  echo "peers: building $name $version (${build_env[*]:+${build_env[*]} }${goflags_extra[*]:+GOFLAGS+=${goflags_extra[*]} }${moddir:+in $moddir: }${targets[*]}), log: $log" >&2
  tmp="$(mktemp -d "$cache/.build-$name-XXXXXX")"
  chmod 755 "$tmp"
  start=$(date +%s)
  goflags="${GOFLAGS:--buildvcs=false}${goflags_extra[*]:+ ${goflags_extra[*]}}"
  if (cd "${moddir:-$repo_root}" && nice -n "$nice_level" env GOBIN="$tmp" GOFLAGS="$goflags" \
      ${build_env[@]+"${build_env[@]}"} go install -trimpath "${targets[@]}") >"$log" 2>&1; then
    secs=$(( $(date +%s) - start ))
    missing=""
    for b in "${bins[@]}"; do [ -x "$tmp/$b" ] || missing="$missing $b"; done
    if [ -n "$missing" ]; then
      reason="go install succeeded but did not produce:$missing (got: $(find "$tmp" -mindepth 1 -printf '%f '))"
      echo "$reason" >"$failed"; rm -rf "$tmp"
      rows+=("$name|$version|FAILED|$secs|$reason")
      [ "$here" = yes ] && hard_failures=$((hard_failures + 1))
      continue
    fi
    echo "$secs" >"$tmp/.kibaship-built"
    printf '%s\n' "$src_hash" >"$tmp/.kibaship-source"
    rm -rf "$dir"; mv "$tmp" "$dir"; rm -f "$failed"
    if [ "$here" = yes ]; then note=""; else note="built, but does not run here (here=no): see docs/peers.md"; fi
    rows+=("$name|$version|built|$secs|$note")
  else
    secs=$(( $(date +%s) - start ))
    rm -rf "$tmp"
    reason="$(failure_reason "$log") (log: $log)"
    echo "$reason" >"$failed"
    rows+=("$name|$version|FAILED|$secs|$reason")
    [ "$here" = yes ] && hard_failures=$((hard_failures + 1))
  fi
done <"$list"

# The table. "seconds" is the build time: of this run for `built`, of the first (cold) build for `cached`.
vw=10 # the version column fits the longest version (trivy-db's pseudo-version)
for row in "${rows[@]}"; do
  IFS='|' read -r n v s t r <<<"$row"
  [ "${#v}" -le "$vw" ] || vw="${#v}"
done
printf "%-20s %-${vw}s %-10s %8s  %s\n" peer version status seconds reason
for row in "${rows[@]}"; do
  IFS='|' read -r n v s t r <<<"$row"
  printf "%-20s %-${vw}s %-10s %8s  %s\n" "$n" "$v" "$s" "$t" "$r"
done
if [ "$hard_failures" -gt 0 ]; then
  echo "peers: $hard_failures peer(s) marked here=yes in tools/peers.txt could not be built" >&2
  exit 1
fi
