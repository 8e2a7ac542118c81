#!/usr/bin/env bash
# Writes go.mod for building kube-apiserver VERSION (e.g. v1.37.2) from k8s.io/kubernetes: upstream's go.mod
# replaces every k8s.io/* staging module with ./staging/src/..., which a consumer cannot use, so each is
# pinned to the published v0.MINOR.PATCH twin. Then `go mod tidy`. Update tools/peers.txt to the same version.
set -euo pipefail
version="${1:?usage: gen-go-mod.sh v1.X.Y}"
staging="v0.${version#v1.}"
cd "$(dirname "${BASH_SOURCE[0]}")"
upstream="$(go mod download -json "k8s.io/kubernetes@$version" | jq -r .GoMod)"
{
  echo "module kibaship.local/peers/kube-apiserver"
  echo
  echo "go $(awk '$1 == "go" { print $2; exit }' "$upstream")"
  echo
  echo "require k8s.io/kubernetes $version"
  echo
  echo "// k8s.io/kubernetes replaces its staging modules with ./staging/src/...; a consumer must pin each to the"
  echo "// published $staging that matches $version instead. Regenerate with scripts/peers/kube-apiserver/gen-go-mod.sh."
  echo "replace ("
  grep -E '^\s+k8s.io/[^ ]+ => ./staging' "$upstream" | awk -v v="$staging" '{ printf "\t%s => %s %s\n", $1, $1, v }'
  echo ")"
} >go.mod
go mod tidy
