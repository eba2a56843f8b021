#!/usr/bin/env bash
# The one command that runs every check and test of the repository (README "Test").
# Builds what it needs on a clean machine; caches live outside the clone so a second run is fast.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-"$HOME/.cache/rekognition-operator/target"}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

started=$(date +%s)
step() { printf '\n==> [%ss] %s\n' "$(( $(date +%s) - started ))" "$*"; }

step "control plane (kube-apiserver, etcd, kubectl), helm, crane and actionlint from the pinned Go modules"
tools/envtest/build.sh >/dev/null
tools/helm/build.sh >/dev/null
tools/crane/build.sh >/dev/null
actionlint="$(tools/actionlint/build.sh)/actionlint"

step "cargo-deny and cargo-auditable (pinned, from crates.io)"
cargo_tools=$(tools/cargo/install.sh)

step "actionlint .github/workflows"
# shellcheck integration off: the workflows' scripts are short, and the result must not depend on
# whether the machine happens to have shellcheck.
"$actionlint" -no-color -shellcheck=

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo deny check licenses bans sources (advisories need the network: see README)"
PATH="$cargo_tools:$PATH" cargo deny --offline --log-level error check licenses bans sources

step "generated CRD is in sync with the Rust types"
if ! cargo run --quiet --locked --bin crdgen | diff -u crds/rekognitioncollections.yaml -; then
  echo "crds/rekognitioncollections.yaml is out of date: cargo run --bin crdgen > crds/rekognitioncollections.yaml" >&2
  exit 1
fi

step "operator image without a daemon (scripts/image.sh: release build, crane)"
scripts/image.sh >/dev/null

step "cargo test (unit, emulator, test bed, chart, Helm lifecycle, image boot, end to end)"
cargo test --workspace --locked

step "fleet benchmark at a small scale (figures printed, not asserted; the full run: cargo bench --bench fleet)"
FLEET_SCALE=small cargo test --locked --bench fleet
