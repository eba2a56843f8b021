#!/usr/bin/env bash
# What the test bed's node needs beside the Kubernetes binaries (tools/envtest/build.sh):
#
#   - the container runtime from Debian's packages, installed when missing: containerd (1.6, the
#     CRI runtime; Kubernetes 1.35 is the last release that supports containerd 1.x), runc, the
#     CNI plugins (bridge, host-local, loopback, portmap), iptables and conntrack for kube-proxy,
#     and nftables, whose `nft` the node's teardown check reads the host's rules with;
#   - the pod sandbox ("pause") image, built from ./pause with the machine's Go and written as a
#     `docker save` tarball for `ctr images import`: the node pulls nothing from a registry.
#
# The image goes into a cache outside git keyed by this directory's files; does nothing when it
# is complete. Prints the directory that holds pause.tar on its last line.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache_root=${RKO_CACHE_DIR:-"$HOME/.cache/rekognition-operator"}
key=$(cat "$here/build.sh" "$here/pause/go.mod" "$here/pause/main.go" | sha256sum | cut -c1-16)
out="$cache_root/node/$key"
say() { printf 'tools/node/build.sh: %s\n' "$*" >&2; }

packages=(containerd runc containernetworking-plugins iptables conntrack nftables)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { say "the node needs Debian packages ${missing[*]}: install them as root"; exit 1; }
  say "installing ${missing[*]} from Debian's archive"
  export DEBIAN_FRONTEND=noninteractive
  # Another first run on the machine may be installing at the same moment: wait for dpkg's lock.
  apt-get -o DPkg::Lock::Timeout=600 update -qq >&2
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

if [ -f "$out/pause.tar" ]; then
  echo "$out"
  exit 0
fi
command -v go >/dev/null || { say "Go is required to build the pause image"; exit 1; }
tmp="$out.tmp.$$"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/rootfs" "$tmp/image"
(cd "$here/pause" && GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly \
  go build -trimpath -ldflags='-s -w' -o "$tmp/rootfs/pause" .)
case "$(uname -m)" in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; *) say "unsupported $(uname -m)"; exit 1 ;; esac
# One layer holding /pause, then the image config and a `docker save` manifest naming it.
tar --create --file="$tmp/image/layer.tar" --directory="$tmp/rootfs" --owner=0 --group=0 \
  --numeric-owner --mtime=@0 pause
layer=$(sha256sum "$tmp/image/layer.tar" | cut -d' ' -f1)
mkdir "$tmp/image/$layer" && mv "$tmp/image/layer.tar" "$tmp/image/$layer/layer.tar"
printf '{"architecture":"%s","os":"linux","config":{"Entrypoint":["/pause"],"User":"65535:65535"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
  "$arch" "$layer" >"$tmp/image/config.json"
config=$(sha256sum "$tmp/image/config.json" | cut -d' ' -f1)
mv "$tmp/image/config.json" "$tmp/image/$config.json"
printf '[{"Config":"%s.json","RepoTags":["testbed.local/pause:1"],"Layers":["%s/layer.tar"]}]' \
  "$config" "$layer" >"$tmp/image/manifest.json"
tar --create --file="$tmp/pause.tar" --directory="$tmp/image" --owner=0 --group=0 --numeric-owner \
  --mtime=@0 manifest.json "$config.json" "$layer"
rm -rf "$tmp/rootfs" "$tmp/image"
rm -rf "$out"
mv "$tmp" "$out"
say "pause image built"
echo "$out"
