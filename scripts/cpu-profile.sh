#!/usr/bin/env bash
# CPU profile of the fleet benchmark: where the machine's time goes while the operator works, in
# the operator and beside it (kube-apiserver, etcd, the emulator, the benchmark's own client).
#
# Builds the benchmark and the operator in release mode with symbols and frame pointers (a target
# directory of its own, so the normal build is not disturbed), runs the chosen parts of
# `benches/fleet.rs` under `perf record` for the whole machine, and writes into OUT (default
# benches/profiles):
#   <name>.operator.folded  the operator's sampled stacks, folded (one line per stack:
#                           thread;frame;…;frame weight), every process's in target/profiles/
#   <name>.operator.svg     a flame graph of them
#   <name>.summary.txt      the machine's samples per thread name (the operator, kube-apiserver,
#                           etcd, the emulator, the benchmark, idle) and the operator's hottest frames
#
#   scripts/cpu-profile.sh NAME [FLEET_PARTS] [FLEET_SCALE]
#   scripts/cpu-profile.sh latency latency            one object at a time
#   scripts/cpu-profile.sh fleet fleet                the 10,000-object fleet (about 10 minutes)
#
# Needs perf (Debian: apt-get install linux-perf) and a kernel that lets root sample every CPU;
# installs inferno (flame graphs, pinned) from crates.io into the scripts' tool cache.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
name=${1:?usage: scripts/cpu-profile.sh NAME [FLEET_PARTS] [FLEET_SCALE]}
parts=${2:-$name}
scale=${3:-full}
out=${OUT:-benches/profiles}
# shellcheck source=scripts/cache.sh
. scripts/cache.sh
command -v perf >/dev/null || { echo "perf is required (Debian: apt-get install linux-perf)" >&2; exit 1; }
tools=$(tools/cargo/install.sh inferno | tail -n 1)

export CARGO_TARGET_DIR=${PROFILE_TARGET_DIR:-"$cache/target-profile"}
claim_target_dir
export CARGO_PROFILE_RELEASE_STRIP=false CARGO_PROFILE_RELEASE_DEBUG=line-tables-only
export RUSTFLAGS="${RUSTFLAGS:-} -C force-frame-pointers=yes"
# Built first, so the compiler is not in the profile.
FLEET_SCALE=$scale cargo bench --locked --bench fleet --no-run
tools/envtest/build.sh >/dev/null

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "cpu-profile.sh: running FLEET_PARTS=$parts FLEET_SCALE=$scale under perf" >&2
FLEET_PARTS=$parts FLEET_SCALE=$scale perf record --quiet -F 197 -a -g -o "$work/perf.data" -- \
  cargo bench --locked --bench fleet | tee "$work/bench.txt"

mkdir -p "$out" target/profiles
all="target/profiles/$name.folded"
perf script -i "$work/perf.data" 2>/dev/null | "$tools/inferno-collapse-perf" --all >"$all"
# The operator's threads are all named rekognition-op (its main thread rekognition-ope).
grep -E '^rekognition-op' "$all" >"$out/$name.operator.folded"
"$tools/inferno-flamegraph" --title "rekognition-operator: $name" \
  <"$out/$name.operator.folded" >"$out/$name.operator.svg"
# The summary's pipes end in `head`, which closes them early on purpose.
set +o pipefail
{
  echo "# scripts/cpu-profile.sh $name $parts $scale ($(git rev-parse --short HEAD), $(nproc) cores)"
  echo
  echo "## share of the machine's samples per thread name (swapper: idle; rekognition-op*: the
## operator; tokio-rt-worker and fleet-*: the benchmark, whose process runs the emulator)"
  awk '{ n = $NF; split($1, f, ";"); total += n; by[f[1]] += n }
       END { for (p in by) printf "%6.2f %%  %s\n", 100 * by[p] / total, p }' \
    "$all" | sort -rn | head -n 15
  echo
  echo "## the operator's frames with the most samples (self and below)"
  awk '{ n = $NF; sub(/ [0-9]+$/, ""); k = split($0, f, ";"); delete seen;
           for (i = 2; i <= k; i++) if (!(f[i] in seen)) { seen[f[i]] = 1; by[f[i]] += n }; total += n }
         END { for (x in by) printf "%6.2f %%  %s\n", 100 * by[x] / total, x }' \
    "$out/$name.operator.folded" | sort -rn | head -n 40
  echo
  echo "## the operator's samples by what they do (each sample goes to the first match from its leaf)"
  python3 - "$out/$name.operator.folded" <<'PY'
import collections, re, sys
kinds = [
    ("kernel: syscalls (network I/O, futex)", r"_\[k\]$"),
    ("allocator (malloc, free)", r"^(malloc|free|cfree|realloc|_int_\w+)$"),
    ("AWS SigV4 signing", r"aws_sigv4"),
    ("AWS SDK (smithy orchestrator, endpoints)", r"aws_smithy|aws_sdk_rekognition|aws_runtime|aws_types"),
    ("JSON (serde_json)", r"serde_json"),
    ("TLS (rustls, aws-lc)", r"rustls|aws_lc"),
    ("HTTP (hyper, h2)", r"hyper|h2::"),
    ("kube client", r"kube_client"),
    ("kube-runtime (controller, scheduler, reflector)", r"kube_runtime"),
    ("logging (tracing)", r"tracing"),
    ("the operator's own decisions (plan, status, gate, limiter)",
     r"rekognition_operator::(core|adapters::rate|runtime::memory)"),
]
total, by = 0, collections.Counter()
for line in open(sys.argv[1]):
    stack, n = line.rsplit(" ", 1)
    total += int(n)
    for frame in reversed(stack.split(";")):
        kind = next((k for k, pattern in kinds if re.search(pattern, frame)), None)
        if kind:
            by[kind] += int(n)
            break
    else:
        by["other"] += int(n)
for kind, n in by.most_common():
    print(f"{100 * n / max(total, 1):6.2f} %  {kind}")
PY
  echo
  echo "## the benchmark's table"
  grep -E '^\|' "$work/bench.txt" || true
} >"$out/$name.summary.txt"
echo "cpu-profile.sh: wrote $out/$name.{operator.folded,operator.svg,summary.txt} and $all" >&2
