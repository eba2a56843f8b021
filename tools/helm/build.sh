#!/usr/bin/env bash
# Builds the Helm v3 CLI from the Go module pinned in go.mod, with the machine's own Go toolchain,
# into a cache outside git keyed by the pinned versions. Does nothing when that cache is already
# complete. Prints the directory that holds the binary on its last line.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache_root=${RKO_CACHE_DIR:-"$HOME/.cache/rekognition-operator"}
key=$(cat "$here/go.mod" "$here/go.sum" "$here/build.sh" | sha256sum | cut -c1-16)
out="$cache_root/helm/$key"
tools=(helm)

complete() {
  for t in "${tools[@]}"; do [ -x "$out/$t" ] || return 1; done
}

if complete; then
  echo "$out"
  exit 0
fi

command -v go >/dev/null || { echo "build.sh: Go is required to build helm" >&2; exit 1; }

tmp="$out.tmp.$$"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"
cd "$here"
# -mod=readonly: go.mod and go.sum are complete in git; a build never rewrites them.
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly
# Stamp the release into the binary as Helm's own release build does: `helm version` reports the
# pinned version, and the default Kubernetes version that `helm template` and `helm lint` assume
# follows the pinned client-go (v0.N.x means Kubernetes 1.N).
helm_version=$(go list -m -f '{{.Version}}' helm.sh/helm/v3)
k8s_minor=$(go list -m -f '{{.Version}}' k8s.io/client-go | cut -d. -f2)
stamp="-s -w -X helm.sh/helm/v3/internal/version.version=$helm_version"
stamp+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
  stamp+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$k8s_minor"
done
start=$(date +%s)
echo "build.sh: building helm $helm_version into $out (first run takes a few minutes)" >&2
go build -trimpath -ldflags="$stamp" -o "$tmp/helm" helm.sh/helm/v3/cmd/helm
rm -rf "$out"
mv "$tmp" "$out"
echo "build.sh: built in $(( $(date +%s) - start ))s" >&2
echo "$out"
