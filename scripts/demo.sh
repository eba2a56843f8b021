#!/usr/bin/env bash
# One-command demo: builds what it needs, starts the test bed (a real kube-apiserver + etcd and
# the Rekognition emulator), runs the operator against it, applies deploy/examples/myphotos.yaml,
# waits for Ready, prints the result, and keeps everything running until Ctrl-C.
#
# --in-cluster: the way a platform team runs it. Builds the image (scripts/image.sh), starts the
# test bed with its node (kubelet, kube-proxy, containerd; needs root), imports the image into the
# node, `helm install`s the chart with its default values into a namespace that enforces Pod
# Security `restricted` (only the emulator's endpoint and keys are added), applies myphotos, waits
# for Ready and prints the pods and the object.
set -euo pipefail
in_cluster=false
case "${1:-}" in
  "") ;;
  --in-cluster) in_cluster=true ;;
  *) echo "usage: scripts/demo.sh [--in-cluster]" >&2; exit 2 ;;
esac
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
phase "control plane and node: kube-apiserver, etcd, kubectl, kube-controller-manager, kube-scheduler, kubelet, kube-proxy from the pinned Go modules (first run: about ten minutes)" \
  tools/envtest/build.sh
bin_dir=$(tools/envtest/build.sh 2>/dev/null)
kubectl="$bin_dir/kubectl"
claim_target_dir
phase "test bed and emulator (cargo build; first run: a few minutes)" \
  cargo build --locked -p testbed --bin testbed
if $in_cluster; then
  [ "$(id -u)" = 0 ] || { echo "--in-cluster runs a node (namespaces, cgroups, mounts): run it as root" >&2; exit 1; }
  phase "node runtime: containerd, runc, CNI plugins (Debian packages, installed when missing) and the pause image" \
    tools/node/build.sh
  phase "helm from its pinned Go module" tools/helm/build.sh
  helm="$(tools/helm/build.sh 2>/dev/null)/helm"
  phase "operator image (scripts/image.sh: release build, no daemon; first run: a few minutes)" scripts/image.sh
  version=$(sed -n 's/^appVersion: "\(.*\)"$/\1/p' deploy/helm/rekognition-operator/Chart.yaml)
  image_args=(--node --image "ghcr.io/aws-operators/rekognition-operator:$version=$root/target/image/rekognition-operator.tar")
else
  phase "operator (cargo build)" cargo build --locked --bin rekognition-operator
  image_args=()
fi

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

say "starting the test bed$($in_cluster && echo ' with its node' || true)"
"$CARGO_TARGET_DIR/debug/testbed" up --out-dir "$out" "${image_args[@]}" >"$out/testbed.out" 2>"$testbed_log" &
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

if $in_cluster; then
  namespace=rekognition-system
  say "helm install rekognition-operator into $namespace (Pod Security: restricted)"
  "$kubectl" create namespace "$namespace"
  "$kubectl" label namespace "$namespace" pod-security.kubernetes.io/enforce=restricted
  # What points the chart at the emulator: its endpoint and region, its keys in a Secret.
  "$kubectl" create secret generic emulator-credentials --namespace "$namespace" \
    --from-literal=AWS_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" \
    --from-literal=AWS_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY"
  {
    printf 'aws:\n  region: %s\n  endpointUrl: %s\nextraEnv:\n' "$AWS_REGION" "$AWS_ENDPOINT_URL"
    for key in AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY; do
      printf '  - name: %s\n    valueFrom: {secretKeyRef: {name: emulator-credentials, key: %s}}\n' "$key" "$key"
    done
  } >"$out/emulator-values.yaml"
  HELM_CACHE_HOME="$out/helm/cache" HELM_CONFIG_HOME="$out/helm/config" HELM_DATA_HOME="$out/helm/data" \
    "$helm" install rekognition-operator deploy/helm/rekognition-operator --namespace "$namespace" \
    --values "$out/emulator-values.yaml" --wait --timeout 3m
  "$kubectl" get pods --namespace "$namespace" -o wide
else
  say "starting the operator (log: $operator_log)"
  "$CARGO_TARGET_DIR/debug/rekognition-operator" --metrics-addr 127.0.0.1:0 >"$operator_log" 2>&1 &
  pids+=($!)
fi

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
if $in_cluster; then echo "  kubectl logs --namespace rekognition-system deployment/rekognition-operator"; fi
echo "  . $out/aws.env    # the emulator's endpoint and credentials, for the AWS SDK or CLI"
echo
echo "Press Ctrl-C to stop and clean up."
wait "${pids[0]}"
