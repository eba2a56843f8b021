#!/usr/bin/env bash
# Heap profile of the operator holding N objects (default 2000): where its memory goes.
#
# Builds the operator with dhat's allocator (--features dhat-heap, its own target directory so the
# normal build is not disturbed), starts the test bed, applies N objects with `kubectl apply` (so
# they carry what real objects carry: managedFields and the last-applied annotation), waits until
# all are Ready, stops the operator with SIGTERM and summarises the profile: the
# allocation sites that held the most bytes at the heap's peak, and what was live per object.
#
#   scripts/heap-profile.sh [N]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
count=${1:-2000}
# shellcheck source=scripts/cache.sh
. scripts/cache.sh
# The profiling build has other features: a target directory of its own, so neither build
# thrashes the other's cache (the crates are the scripts' one cargo home all the same).
export CARGO_TARGET_DIR=${DHAT_TARGET_DIR:-"$cache/target-dhat"}
claim_target_dir
bin_dir=$(tools/envtest/build.sh)
kubectl="$bin_dir/kubectl"
cargo build --quiet --locked -p testbed --bin testbed
# Optimised, with line tables and symbols so the profile names its frames: the debug build with
# the profiling allocator is too slow to reach 10,000 objects.
CARGO_PROFILE_RELEASE_STRIP=false CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
  cargo build --quiet --locked --release --features dhat-heap --bin rekognition-operator

out=$(mktemp -d)
pids=()
cleanup() {
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
  rm -rf "$out"
}
trap cleanup EXIT INT TERM

"$CARGO_TARGET_DIR/debug/testbed" up --out-dir "$out" >"$out/testbed.out" 2>"$out/testbed.log" &
pids+=($!)
for _ in $(seq 1 240); do
  grep -q '^testbed ready$' "$out/testbed.out" 2>/dev/null && break
  sleep 0.5
done
grep -q '^testbed ready$' "$out/testbed.out" || { tail -n 40 "$out/testbed.log" >&2; exit 1; }
export KUBECONFIG="$out/kubeconfig"
# shellcheck disable=SC1091
. "$out/aws.env"

mkdir -p "$out/profile"
(cd "$out/profile" && exec "$CARGO_TARGET_DIR/release/rekognition-operator" --metrics-addr off \
  --aws-rate 500 --aws-rate-ceiling 500 --aws-burst 500 --log-level warn) 2>"$out/operator.log" &
operator=$!

python3 - "$count" >"$out/objects.yaml" <<'EOF'
import sys
for i in range(int(sys.argv[1])):
    print(f"""---
apiVersion: rekognition.aws-operators.dev/v1alpha1
kind: RekognitionCollection
metadata:
  name: heap-{i:05d}
  labels:
    app.kubernetes.io/part-of: heap-profile
spec:
  tags:
    team: vision
    cost-center: "4711"
""")
EOF
echo "applying $count objects" >&2
"$kubectl" apply -f "$out/objects.yaml" >/dev/null
# The profiling allocator records a backtrace per allocation: a few objects a second.
"$kubectl" wait --for=condition=Ready --timeout="$((300 + count))s" rekcol --all >/dev/null
# Ready is the last write until the first resync: what the operator holds from here on.
sleep 5
rss=$(awk '/VmRSS/ {print $2}' "/proc/$operator/status")
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$operator/status")
kill -TERM "$operator"
wait "$operator" || true
mkdir -p "$root/target"
cp "$out/profile/dhat-heap.json" "$root/target/dhat-heap.json"
echo "profile: target/dhat-heap.json (open it with dhat's viewer, dh_view.html)" >&2

python3 - "$root/target/dhat-heap.json" "$count" "$rss" "$hwm" <<'EOF'
import json, sys, collections
path, count, rss, hwm = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
profile = json.load(open(path))
frames = profile["ftbl"]
def site(pp):
    # The innermost frame of our own code or of kube/serde/hyper, for a readable attribution.
    names = [frames[f] for f in pp["fs"]]
    for keep in ("rekognition_operator", "kube_runtime", "kube_client", "serde_json", "k8s_openapi", "hyper", "h2", "aws_", "tokio", "rustls"):
        for n in names:
            if keep in n and "alloc::" not in n.split(" ")[1][:8]:
                return n.split(" (")[0][:140]
    return names[0].split(" (")[0][:140] if names else "?"
total_gb = sum(pp["gb"] for pp in profile["pps"])
print(f"operator holding {count} objects: RSS {rss/1024:.1f} MiB (peak {hwm/1024:.1f} MiB); heap at its peak {total_gb/1048576:.1f} MiB = {total_gb/count/1024:.2f} KiB per object")
by_site = collections.Counter()
for pp in profile["pps"]:
    by_site[site(pp)] += pp["gb"]
print("largest allocation sites at the heap's peak:")
for name, bytes_ in by_site.most_common(15):
    print(f"  {bytes_/1048576:8.2f} MiB  {bytes_/count:8.0f} B/object  {name}")
# The same sites with the first frame of the operator or kube-runtime above them: who holds them.
def holder(pp):
    names = [frames[f].split(": ", 1)[-1].split(" (")[0] for f in pp["fs"]]
    here = site(pp)
    for n in names:
        if ("rekognition_operator::" in n or "kube_runtime::" in n) and n[:60] not in here:
            return n[:100]
    return "?"
by_holder = collections.Counter()
for pp in profile["pps"]:
    by_holder[(site(pp)[:90], holder(pp))] += pp["gb"]
print("largest sites by their holder:")
for (name, who), bytes_ in by_holder.most_common(20):
    print(f"  {bytes_/1048576:8.2f} MiB  {bytes_/count:8.0f} B/object  {name}  <-  {who}")
EOF
