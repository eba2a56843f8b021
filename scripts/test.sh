#!/usr/bin/env bash
# The one command that runs every check and test of the repository (README "Test").
# Builds what it needs on a clean machine; caches live outside the clone so a second run is fast.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck source=scripts/cache.sh
. scripts/cache.sh
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

started=$(date +%s)
step() { printf '\n==> [%ss] %s\n' "$(( $(date +%s) - started ))" "$*"; }

step "prerequisites: what the machine itself must have (the rest is built below)"
missing=()
for tool in cargo go git tar readelf unshare nsenter flock ip sha256sum; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "missing on this machine: ${missing[*]} (docs/development.md, \"Test\", lists what the test command needs)" >&2
  exit 1
fi
# The run must leave the clone as it found it: a step that rewrites a tracked file (a Go build
# that completes go.sum, a generator run in place) works only where an earlier run did the same.
tree_before=$(git status --porcelain --untracked-files=all)

step "control plane (kube-apiserver, etcd, kubectl, kube-controller-manager, kube-scheduler) and node (kubelet, kube-proxy), helm, crane, kstatus, Prometheus, the EKS pod identity webhook and actionlint from the pinned Go modules"
tools/envtest/build.sh >/dev/null
tools/helm/build.sh >/dev/null
tools/crane/build.sh >/dev/null
tools/kstatus/build.sh >/dev/null
tools/prometheus/build.sh >/dev/null
tools/pod-identity-webhook/build.sh >/dev/null
actionlint="$(tools/actionlint/build.sh)/actionlint"

step "the node's runtime: containerd, runc, CNI plugins, iptables, nftables (Debian packages, installed when missing) and the pause image"
tools/node/build.sh >/dev/null

step "cargo-deny, cargo-auditable, mdbook and lychee (pinned, from crates.io)"
cargo_tools=$(tools/cargo/install.sh cargo-deny cargo-auditable mdbook lychee | tail -n 1)

step "crates: the registry emptied, then every crate Cargo.lock names fetched (all platforms); cargo runs offline from here"
# The scripts' own cargo home (scripts/cache.sh): every run empties its registry and fills it
# with one `cargo fetch --locked`, and every later cargo step runs offline. So no step leans on
# crates that an earlier run (or another project) left behind: what a clean machine lacks, every
# run lacks, and a step that needs more than Cargo.lock fails here on any machine, not only on a
# new one. (cargo-deny, for one, reads the metadata of every platform's crates, which no build
# downloads.) The emptied registry costs a few seconds; the build cache does not notice it.
rm -rf "$CARGO_HOME/registry" "$CARGO_HOME/git"
cargo fetch --locked --quiet
export CARGO_NET_OFFLINE=true
# And this clone's own crates, never another clone's build of them (scripts/cache.sh).
claim_target_dir

step "actionlint .github/workflows"
# shellcheck integration off: the workflows' scripts are short, and the result must not depend on
# whether the machine happens to have shellcheck.
"$actionlint" -no-color -shellcheck=

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo deny check licenses bans sources (advisories need the network: see docs/install.md)"
PATH="$cargo_tools:$PATH" cargo deny --offline --log-level error check licenses bans sources

step "generated CRD is in sync with the Rust types"
if ! cargo run --quiet --locked --bin crdgen | diff -u crds/rekognitioncollections.yaml -; then
  echo "crds/rekognitioncollections.yaml is out of date: cargo run --bin crdgen > crds/rekognitioncollections.yaml" >&2
  exit 1
fi

step "generated API reference (docs/reference.md) is in sync with the CRD"
if ! cargo run --quiet --locked --bin crdgen -- --reference | diff -u docs/reference.md -; then
  echo "docs/reference.md is out of date: cargo run --bin crdgen -- --reference > docs/reference.md" >&2
  exit 1
fi

step "docs: the site builds (mdBook; a warning fails it) and every link holds (lychee, offline)"
scripts/docs.sh

step "operator image without a daemon (scripts/image.sh: release build, crane)"
scripts/image.sh >/dev/null

step "cargo test (unit, emulator, test bed, chart, Helm lifecycle, image, end to end, the chart's pods on the node)"
cargo test --workspace --locked

step "fleet benchmark at a small scale (figures printed, not asserted; the full run: cargo bench --bench fleet)"
FLEET_SCALE=small cargo test --locked --bench fleet

step "the clone is as the run found it"
if [ "$(git status --porcelain --untracked-files=all)" != "$tree_before" ]; then
  echo "the test command changed files in the clone (outside target/):" >&2
  diff <(echo "$tree_before") <(git status --porcelain --untracked-files=all) >&2 || true
  exit 1
fi
step "done"
