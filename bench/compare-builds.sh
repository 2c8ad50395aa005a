#!/usr/bin/env bash
# On the GPU host, in one call: the same benchmarks from this tree and an earlier one, so that
# a redesign can show it kept the speed. BEFORE is a checkout of the earlier commit with its own
# .gpu-carry (tests/gpu/pack.sh run there); both trees' addons and scan benchmarks are built
# with tests/gpu/build-addon.sh (this tree's Node serves both). Each round runs before, then
# after, then after, then before (drift hits both alike): `bench scan`'s default shape (b8 d1536
# l2048 n16 bf16, training's atomic backward) and `bench train` at its CUDA defaults for Mamba v1,
# MoE-Mamba v1 and BlackMamba 340M/1.5B; with BENCH=generate, `bench generate --device cuda`
# (GENERATE_ARGS, e.g. "--lengths 2048", passed on) instead. JSON lines, each with "build":
# "before" | "after", go to stdout; medians and after/before ratios to stderr last.
#
#   bash bench/compare-builds.sh BEFORE_DIR [ROUNDS]     (default 1 round: 2 runs per build)
#   BENCH=generate GENERATE_ARGS="--lengths 2048" bash bench/compare-builds.sh BEFORE_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
BEFORE=$(realpath "$1")
ROUNDS=${2:-1}
AFTER=$PWD
BUILD=native/build-gpu
BENCH=${BENCH:-train}

for tree in "$BEFORE" "$AFTER"; do
  [ -f "$tree/.gpu-carry/node.xz" ] || cp "$AFTER/.gpu-carry/node.xz" "$tree/.gpu-carry/node.xz"
  targets=(mambalab_bench_scan)
  [ "$BENCH" = generate ] && targets=()
  if { [ "$BENCH" != generate ] && [ ! -x "$tree/$BUILD/mambalab_bench_scan" ]; } ||
     [ ! -f "$tree/.gpu-carry/native/build/Release/mambalab.node" ]; then
    echo "compare-builds: building $tree" >&2
    (cd "$tree" && BUILD=$BUILD bash tests/gpu/build-addon.sh && for target in "${targets[@]}"; do
      cmake --build "$BUILD" --parallel "$(nproc)" --target "$target"; done) >"$tree/$BUILD.compare.log" 2>&1 || {
      tail -30 "$tree/$BUILD.compare.log" >&2
      exit 1
    }
  fi
done

tag() {  # BUILD: JSON lines of stdin, tagged
  python3 -c 'import json, sys
for line in sys.stdin:
    if line.startswith("{"): print(json.dumps({"build": sys.argv[1], **json.loads(line)}), flush=True)' "$1"
}

run_build() {  # before | after
  local tree=$BEFORE
  [ "$1" = after ] && tree=$AFTER
  if [ "$BENCH" = generate ]; then
    # shellcheck disable=SC2086  # GENERATE_ARGS is a list of flags
    "$tree/.gpu-carry/bin/node" "$tree/.gpu-carry/cli/dist/mambalab.mjs" bench generate --device cuda --json \
      ${GENERATE_ARGS:-} 2>/dev/null | tag "$1"
    return
  fi
  "$tree/$BUILD/mambalab_bench_scan" | tag "$1"
  for model in mamba moe-mamba blackmamba; do
    "$tree/.gpu-carry/bin/node" "$tree/.gpu-carry/cli/dist/mambalab.mjs" bench train --model "$model" --device cuda \
      --json | tag "$1"
  done
}

results=$(mktemp)
for _ in $(seq "$ROUNDS"); do
  for build in before after after before; do run_build "$build" | tee -a "$results"; done
done

python3 - "$results" >&2 <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def key(r):
    if r.get("name") == "generate":
        return f'generate {r["model"]} {r["prompt_tokens"]}'
    return r.get("name") or f'scan {r["dtype"]} b{r["shape"]["batch"]} d{r["shape"]["dim"]} l{r["shape"]["len"]}'
metric = {"fwd_ms": "lower", "fwd_bwd_ms": "lower", "tokens_per_s": "higher", "peak_mem_gib": "lower",
          "ms_per_token": "lower"}
med = {}
for r in rows:
    for m in metric:
        if isinstance(r.get(m), (int, float)):
            med.setdefault((key(r), m, r["build"]), []).append(r[m])
print(f'{"benchmark":<34} {"metric":<14} {"before":>12} {"after":>12} {"after/before":>13}')
for (name, m) in sorted({(k, m) for k, m, _ in med}):
    b, a = med.get((name, m, "before")), med.get((name, m, "after"))
    if not b or not a:
        continue
    b, a = statistics.median(b), statistics.median(a)
    print(f"{name:<34} {m:<14} {b:>12.4g} {a:>12.4g} {a / b:>13.4f}")
PY
