#!/usr/bin/env bash
# One-command demo: builds what it needs, starts the test bed (a real kube-apiserver + etcd and
# the Rekognition emulator), runs the operator against it, applies deploy/examples/myphotos.yaml,
# waits for Ready, prints the result, and keeps everything running until Ctrl-C.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
# shellcheck source=scripts/cache.sh
. scripts/cache.sh
started=$(date +%s)

out="$root/target/testbed"
mkdir -p "$out"
# Build and start-up output (go: downloading …, cargo's progress) goes here, not to the terminal.
build_log="$out/demo-build.log"
: >"$build_log"

elapsed() { printf '%4ss' "$(( $(date +%s) - started ))"; }
say() { printf '\n==> [%s] %s\n' "$(elapsed)" "$*"; }
# Runs a phase with its output in the build log: one line when it starts, one when it ends.
phase() {
  local what=$1 begun
  shift
  begun=$(date +%s)
  printf '==> [%s] %s …\n' "$(elapsed)" "$what"
  echo "==> $what: $*" >>"$build_log"
  if ! "$@" >>"$build_log" 2>&1; then
    echo "    failed; the last lines of $build_log:" >&2
    tail -n 30 "$build_log" >&2
    exit 1
  fi
  printf '    done in %ss\n' "$(( $(date +%s) - begun ))"
}

echo "Full build log: $build_log"
phase "control plane: kube-apiserver, etcd, kubectl, kube-controller-manager from the pinned Go modules (first run: about eight minutes)" \
  tools/envtest/build.sh
bin_dir=$(tools/envtest/build.sh 2>/dev/null)
kubectl="$bin_dir/kubectl"
claim_target_dir
phase "test bed and emulator (cargo build; first run: a few minutes)" \
  cargo build --locked -p testbed --bin testbed
phase "operator (cargo build)" cargo build --locked --bin rekognition-operator

testbed_log="$out/testbed.log"
operator_log="$out/operator.log"
pids=()
cleanup() {
  trap - EXIT INT TERM
  echo
  say "stopping"
  # The operator first, so that it closes its watches before the API server stops.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
}
trap cleanup EXIT INT TERM

say "starting the test bed"
"$CARGO_TARGET_DIR/debug/testbed" up --out-dir "$out" >"$out/testbed.out" 2>"$testbed_log" &
pids+=($!)
for _ in $(seq 1 240); do
  grep -q '^testbed ready$' "$out/testbed.out" 2>/dev/null && break
  kill -0 "${pids[0]}" 2>/dev/null || { tail -n 40 "$testbed_log" >&2; echo "the test bed failed to start" >&2; exit 1; }
  sleep 0.5
done
grep -q '^testbed ready$' "$out/testbed.out" || { echo "the test bed did not become ready" >&2; exit 1; }

export KUBECONFIG="$out/kubeconfig"
# shellcheck disable=SC1091
. "$out/aws.env"

say "starting the operator (log: $operator_log)"
"$CARGO_TARGET_DIR/debug/rekognition-operator" --metrics-addr 127.0.0.1:0 >"$operator_log" 2>&1 &
pids+=($!)

say "kubectl apply -f deploy/examples/myphotos.yaml"
"$kubectl" apply -f deploy/examples/myphotos.yaml
"$kubectl" wait --for=condition=Ready --timeout=120s rekognitioncollection/myphotos

say "kubectl get rekcol -o wide"
"$kubectl" get rekcol -o wide
echo
echo "collectionArn:    $("$kubectl" get rekcol myphotos -o jsonpath='{.status.collectionArn}')"
echo "faceModelVersion: $("$kubectl" get rekcol myphotos -o jsonpath='{.status.faceModelVersion}')"
echo
echo "Ready in $(( $(date +%s) - started ))s. Try it from another shell:"
echo "  export KUBECONFIG=$KUBECONFIG"
echo "  export PATH=$bin_dir:\$PATH    # the kubectl built with the control plane"
echo "  kubectl apply -f deploy/examples/tags.yaml && kubectl get rekcol -o wide"
echo "  kubectl describe rekcol myphotos"
echo "  . $out/aws.env    # the emulator's endpoint and credentials, for the AWS SDK or CLI"
echo
echo "Press Ctrl-C to stop and clean up."
wait "${pids[0]}"
