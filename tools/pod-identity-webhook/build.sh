#!/usr/bin/env bash
# Builds the EKS Pod Identity Webhook (IRSA's mutating webhook, for the node tests) from the Go module pinned in go.mod, with the machine's own Go toolchain, into a
# cache outside git keyed by the pinned versions. Does nothing when that cache is already
# complete. Prints the directory that holds the binary on its last line.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache_root=${RKO_CACHE_DIR:-"$HOME/.cache/rekognition-operator"}
key=$(cat "$here/go.mod" "$here/go.sum" "$here/build.sh" | sha256sum | cut -c1-16)
out="$cache_root/pod-identity-webhook/$key"

if [ -x "$out/amazon-eks-pod-identity-webhook" ]; then
  echo "$out"
  exit 0
fi

command -v go >/dev/null || { echo "build.sh: Go is required to build the pod identity webhook" >&2; exit 1; }

tmp="$out.tmp.$$"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"
cd "$here"
# -mod=readonly: go.mod and go.sum are complete in git; a build never rewrites them.
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly
version=$(go list -m -f '{{.Version}}' github.com/aws/amazon-eks-pod-identity-webhook)
start=$(date +%s)
echo "build.sh: building amazon-eks-pod-identity-webhook $version into $out" >&2
go build -trimpath -ldflags='-s -w' -o "$tmp/amazon-eks-pod-identity-webhook" github.com/aws/amazon-eks-pod-identity-webhook
rm -rf "$out"
mv "$tmp" "$out"
echo "build.sh: built in $(( $(date +%s) - start ))s" >&2
echo "$out"
