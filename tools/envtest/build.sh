#!/usr/bin/env bash
# Builds kube-apiserver, etcd, kubectl and kube-controller-manager, and the node's kubelet,
# kube-scheduler and kube-proxy, from the Go modules pinned in go.mod, with the machine's own Go
# toolchain, into a cache outside git keyed by the pinned versions. Does nothing when that
# cache is already complete. Prints the directory that holds the binaries on its last line.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache_root=${RKO_CACHE_DIR:-"$HOME/.cache/rekognition-operator"}
key=$(cat "$here/go.mod" "$here/go.sum" "$here/build.sh" | sha256sum | cut -c1-16)
out="$cache_root/envtest/$key"
tools=(kube-apiserver etcd kubectl kube-controller-manager kubelet kube-scheduler kube-proxy)

complete() {
  for t in "${tools[@]}"; do [ -x "$out/$t" ] || return 1; done
}

if complete; then
  echo "$out"
  exit 0
fi

command -v go >/dev/null || { echo "build.sh: Go is required to build the control plane" >&2; exit 1; }

tmp="$out.tmp.$$"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"
cd "$here"
# -mod=readonly: go.mod and go.sum are complete in git, and a build never rewrites them (a build
# that needed to would change this cache's key behind the next run's back).
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly
# Stamp the release into the binaries so discovery (/version) reports it, as a release build would.
k8s_version=$(go list -m -f '{{.Version}}' k8s.io/kubernetes)
stamp="-s -w -X k8s.io/component-base/version.gitVersion=$k8s_version -X k8s.io/component-base/version.gitTreeState=clean"
start=$(date +%s)
echo "build.sh: building ${tools[*]} into $out (first run takes several minutes)" >&2
go build -trimpath -ldflags="$stamp" -o "$tmp/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
go build -trimpath -ldflags='-s -w' -o "$tmp/etcd" go.etcd.io/etcd/server/v3
go build -trimpath -ldflags="$stamp" -o "$tmp/kubectl" k8s.io/kubernetes/cmd/kubectl
for t in kube-controller-manager kubelet kube-scheduler kube-proxy; do
  go build -trimpath -ldflags="$stamp" -o "$tmp/$t" "k8s.io/kubernetes/cmd/$t"
done
rm -rf "$out"
mv "$tmp" "$out"
echo "build.sh: built in $(( $(date +%s) - start ))s" >&2
echo "$out"
