#!/usr/bin/env bash
# Installs the pinned cargo tools the scripts use (cargo-deny for licences, bans and sources;
# cargo-auditable to embed the dependency list in the release binary; inferno for the flame
# graphs of scripts/cpu-profile.sh; mdbook for the docs site and lychee for its links, see
# scripts/docs.sh)
# from crates.io into a cache outside git, with their own Cargo.lock (--locked). Does nothing when
# the pinned versions are already there. Prints the directory holding the binaries on its last line.
#
#   tools/cargo/install.sh                    every pinned tool
#   tools/cargo/install.sh cargo-auditable    only the ones named
set -euo pipefail

cache_root=${RKO_CACHE_DIR:-"$HOME/.cache/rekognition-operator"}
root="$cache_root/cargo-tools"
# name version: bump a version here to move to it; the next run installs it.
pins=(
  "cargo-deny 0.20.2"
  "cargo-auditable 0.7.7"
  "inferno 0.12.8"
  "mdbook 0.5.4"
  "lychee 0.24.2"
)

for pin in "${pins[@]}"; do
  read -r name version <<<"$pin"
  if [ $# -gt 0 ] && ! printf '%s\n' "$@" | grep -qx "$name"; then
    continue
  fi
  stamp="$root/versions/$name"
  if [ -x "$root/bin/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$version" ]; then
    continue
  fi
  start=$(date +%s)
  echo "install.sh: installing $name $version into $root (first run takes a few minutes)" >&2
  # A target directory of its own, so that the workspace's build cache is left alone.
  CARGO_TARGET_DIR="$root/build" cargo install --quiet --locked --force \
    --root "$root" "$name@$version" >&2
  mkdir -p "$root/versions"
  echo "$version" >"$stamp"
  echo "install.sh: $name $version installed in $(( $(date +%s) - start ))s" >&2
done
echo "$root/bin"
