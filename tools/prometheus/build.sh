#!/usr/bin/env bash
# Builds Prometheus and promtool from the Go module pinned in go.mod, with the machine's own Go
# toolchain, into a cache outside git keyed by the pinned versions. Does nothing when that cache is
# already complete. Prints the directory that holds the binaries on its last line.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache_root=${RKO_CACHE_DIR:-"$HOME/.cache/rekognition-operator"}
key=$(cat "$here/go.mod" "$here/go.sum" "$here/build.sh" | sha256sum | cut -c1-16)
out="$cache_root/prometheus/$key"

if [ -x "$out/prometheus" ] && [ -x "$out/promtool" ]; then
  echo "$out"
  exit 0
fi

command -v go >/dev/null || { echo "build.sh: Go is required to build Prometheus" >&2; exit 1; }

tmp="$out.tmp.$$"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"
cd "$here"
# -mod=readonly: go.mod and go.sum are complete in git; a build never rewrites them.
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly
module_version=$(go list -m -f '{{.Version}}' github.com/prometheus/prometheus)
# The Go module v0.3MM.P is Prometheus 3.MM.P; stamp it, as a release build does.
IFS=. read -r _ module_minor module_patch <<<"$module_version"
version="3.$((module_minor - 300)).$module_patch"
stamp="-s -w -X github.com/prometheus/common/version.Version=$version"
start=$(date +%s)
echo "build.sh: building Prometheus $version and promtool into $out" >&2
go build -trimpath -ldflags="$stamp" -o "$tmp/" \
  github.com/prometheus/prometheus/cmd/prometheus github.com/prometheus/prometheus/cmd/promtool
rm -rf "$out"
mv "$tmp" "$out"
echo "build.sh: built in $(( $(date +%s) - start ))s" >&2
echo "$out"
