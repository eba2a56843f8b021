#!/usr/bin/env bash
# Builds kstatus (main.go: the status classifier of sigs.k8s.io/cli-utils that Flux and
# kubectl-based tools use) against the Go modules pinned in go.mod, with the machine's own Go
# toolchain, into a cache outside git keyed by the pinned versions and the source. Does nothing
# when that cache is already complete. Prints the directory that holds the binary on its last line.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache_root=${RKO_CACHE_DIR:-"$HOME/.cache/rekognition-operator"}
key=$(cat "$here/go.mod" "$here/go.sum" "$here/build.sh" "$here/main.go" | sha256sum | cut -c1-16)
out="$cache_root/kstatus/$key"

if [ -x "$out/kstatus" ]; then
  echo "$out"
  exit 0
fi

command -v go >/dev/null || { echo "build.sh: Go is required to build kstatus" >&2; exit 1; }

tmp="$out.tmp.$$"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"
cd "$here"
# -mod=readonly: go.mod and go.sum are complete in git; a build never rewrites them.
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly
version=$(go list -m -f '{{.Version}}' sigs.k8s.io/cli-utils)
start=$(date +%s)
echo "build.sh: building kstatus (cli-utils $version) into $out" >&2
go build -trimpath -ldflags='-s -w' -o "$tmp/kstatus" .
rm -rf "$out"
mv "$tmp" "$out"
echo "build.sh: built in $(( $(date +%s) - start ))s" >&2
echo "$out"
