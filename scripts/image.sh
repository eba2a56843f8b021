#!/usr/bin/env bash
# Builds the operator's OCI image without a container daemon, for the machine's architecture:
#
#   1. the release binary (Cargo.toml's `container` profile: the release profile optimised for
#      size), with its dependency list embedded (cargo auditable);
#   2. its root filesystem, laid out by scripts/image-rootfs.sh (the Dockerfile uses the same);
#   3. one layer and the image config, assembled by go-containerregistry's crane (pinned in
#      tools/crane) through a registry it serves on loopback for the length of this script;
#   4. the image written as an OCI layout (target/image/oci) and a `docker load` tarball
#      (target/image/rekognition-operator.tar), its digest printed and written to
#      target/image/digest.
#
# The same commit gives the same digest: file times and the config's date come from the commit.
# Prints the OCI layout's directory on its last line.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
# shellcheck source=scripts/cache.sh
. scripts/cache.sh
claim_target_dir

say() { printf 'image.sh: %s\n' "$*" >&2; }
fail() { say "$*"; exit 1; }

# What the image declares. The Dockerfile declares the same; tests/package/image.rs compares them.
entrypoint=/rekognition-operator
user=65532:65532
port=8080/tcp
source_url=https://github.com/aws-operators/rekognition-operator
licence=Apache-2.0

case "$(uname -m)" in
  x86_64) platform=linux/amd64 ;;
  aarch64) platform=linux/arm64 ;;
  *) fail "unsupported architecture $(uname -m)" ;;
esac
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
[ -n "$version" ] || fail "no version in Cargo.toml"
revision=$(git rev-parse HEAD 2>/dev/null) || fail "not a git checkout: the image is labelled with its commit"
# Reproducible: every file time in the image is the commit's. Not exported: build scripts (cc)
# watch SOURCE_DATE_EPOCH, so exporting a per-commit value would rebuild C code on every commit.
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}

started=$(date +%s)
tools_bin=$(tools/cargo/install.sh cargo-auditable)
crane="$(tools/crane/build.sh)/crane"

say "release build of rekognition-operator $version ($platform)"
PATH="$tools_bin:$PATH" cargo auditable build --profile container --locked --bin rekognition-operator
binary="$CARGO_TARGET_DIR/container/rekognition-operator"

out="$root/target/image"
work=$(mktemp -d)
registry_pid=""
cleanup() {
  if [ -n "$registry_pid" ]; then kill "$registry_pid" 2>/dev/null || true; wait "$registry_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

scripts/image-rootfs.sh "$binary" "$work/rootfs"
# One layer, in name order, owned by root, with the commit's time: the same tree gives the same bytes.
(cd "$work/rootfs" && tar --create --file="$work/layer.tar" --sort=name --format=posix \
  --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
  --owner=0 --group=0 --numeric-owner --mtime="@$epoch" -- *)

# crane edits images in a registry; this one lives in memory, on a free loopback port, until the
# script ends.
"$crane" registry serve --address 127.0.0.1:0 >"$work/registry.log" 2>&1 &
registry_pid=$!
registry_port=""
for _ in $(seq 1 100); do
  registry_port=$(sed -n 's/.*serving on port \([0-9]*\).*/\1/p' "$work/registry.log")
  [ -n "$registry_port" ] && break
  kill -0 "$registry_pid" 2>/dev/null || { cat "$work/registry.log" >&2; fail "crane's registry did not start"; }
  sleep 0.1
done
[ -n "$registry_port" ] || fail "crane's registry did not say its port"
staging="127.0.0.1:$registry_port/rekognition-operator"

"$crane" append --oci-empty-base --new_layer "$work/layer.tar" --new_tag "$staging:layer" >/dev/null 2>&1 \
  || fail "crane append failed"
"$crane" mutate "$staging:layer" --tag "$staging:$version" \
  --set-platform "$platform" \
  --entrypoint "$entrypoint" \
  --user "$user" \
  --exposed-ports "$port" \
  --workdir / \
  --label "org.opencontainers.image.title=rekognition-operator" \
  --label "org.opencontainers.image.description=Kubernetes operator for Amazon Rekognition face collections" \
  --label "org.opencontainers.image.source=$source_url" \
  --label "org.opencontainers.image.revision=$revision" \
  --label "org.opencontainers.image.version=$version" \
  --label "org.opencontainers.image.licenses=$licence" \
  >/dev/null 2>&1 || fail "crane mutate failed"
digest=$("$crane" digest "$staging:$version")

rm -rf "$out"
mkdir -p "$out"
"$crane" pull --format=oci "$staging:$version" "$out/oci"
"$crane" pull --format=tarball "$staging:$version" "$out/rekognition-operator.tar"
echo "$digest" >"$out/digest"
"$crane" config "$staging:$version" >"$out/config.json"

# What a node pulls: the manifest, the config and the compressed layer.
compressed=$(find "$out/oci/blobs" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')
unpacked=$(stat -c %s "$work/layer.tar")
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
say "rekognition-operator:$version ($platform) built in $(( $(date +%s) - started ))s"
say "digest:   $digest"
say "size:     $(mib "$compressed") to pull (compressed), $(mib "$unpacked") unpacked (target: at most 20 MiB)"
say "written:  $out/oci (OCI layout), $out/rekognition-operator.tar (docker load)"
echo "$out/oci"
