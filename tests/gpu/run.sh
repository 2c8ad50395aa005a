#!/usr/bin/env bash
# On the GPU host: build the engine with its CUDA backend, run every CUDA op against the CPU
# reference (mambalab_gpu_tests), then the selective-scan benchmark beside the plain-PyTorch
# reference, and print a short table last. Logs and JSON lines go to $OUT (default
# ./gpu-out). Without a GPU it says so and exits 0.
#
#   bash tests/gpu/run.sh            # everything
#   SKIP_BENCH=1 bash tests/gpu/run.sh       # tests only
#   SKIP_REFERENCE=1 bash tests/gpu/run.sh   # without the (slow) PyTorch reference
#   PROFILE=1 bash tests/gpu/run.sh          # also ncu counters of the scan kernels
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-$PWD/gpu-out}
BUILD=${BUILD:-native/build-gpu}
WORK=$(mktemp -d)  # intermediate files; $OUT keeps the few that matter (the device tool returns 8)
mkdir -p "$OUT"

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "no GPU: skipping"
  exit 0
fi
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,temperature.gpu,power.draw \
  --format=csv

generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
echo "# build ($BUILD)"
if ! { cmake -S native -B "$BUILD" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DMAMBALAB_CUDA=ON &&
       cmake --build "$BUILD" --parallel --target mambalab_gpu_tests mambalab_bench_scan; } >"$OUT/build.log" 2>&1; then
  tail -40 "$OUT/build.log"
  echo "build failed (full log: $OUT/build.log)"
  exit 1
fi

# The scan's machine code, for reading (instruction mix, no local memory): cheap to keep.
scan_obj=$(find "$BUILD" -path '*selective_scan/cuda.cu.o' | head -1)
if [ -n "$scan_obj" ] && command -v cuobjdump >/dev/null 2>&1; then
  cuobjdump -sass "$scan_obj" | gzip >"$OUT/scan.sass.gz"
  cuobjdump -res-usage "$scan_obj" 2>&1 | grep -A1 Function | grep -v '^--' >>"$OUT/build.log"
fi

echo "# tests"
"$BUILD/mambalab_gpu_tests" 2>&1 | tee "$OUT/gpu_tests.log"
tests_rc=${PIPESTATUS[0]}

if [ -z "${SKIP_BENCH:-}" ]; then
  echo "# scan benchmark"
  : >"$WORK/scan_ours.jsonl"
  for config in "bf16 1 64" "bf16 0 64" "bf16 1 32" "bf16 1 16" "fp32 1 64"; do
    set -- $config
    "$BUILD/mambalab_bench_scan" --dtype "$1" --deterministic "$2" --checkpoint-every "$3" \
      >>"$WORK/scan_ours.jsonl" 2>>"$OUT/bench.log" || echo "benchmark failed: $config (see $OUT/bench.log)"
  done
  if [ -n "${SKIP_REFERENCE:-}" ]; then
    cp "$WORK/scan_ours.jsonl" "$OUT/scan.jsonl"
  else
    PYTHONUNBUFFERED=1 python3 bench/reference/scan_reference.py --ours "$WORK/scan_ours.jsonl" \
      >"$OUT/scan.jsonl" 2>>"$OUT/bench.log" || {
      echo "PyTorch reference failed (see $OUT/bench.log)"
      cp "$WORK/scan_ours.jsonl" "$OUT/scan.jsonl"
    }
  fi
  cat "$OUT/scan.jsonl"
fi

# Hardware counters of the scan kernels (one forward, one backward), for the notes.
if [ -n "${PROFILE:-}" ] && command -v ncu >/dev/null 2>&1; then
  echo "# profile (ncu, clocks left as they are)"
  ncu --clock-control none --kernel-name regex:scan_ --launch-count 3 \
    --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats \
    --section SchedulerStats --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis \
    "$BUILD/mambalab_bench_scan" --warmup 0 --iters 1 --sets 1 >"$OUT/scan_profile.txt" 2>&1 ||
    echo "ncu failed (see $OUT/scan_profile.txt)"
fi

echo
echo "== summary =="
grep -E '^(not ok|[0-9]+ passed)' "$OUT/gpu_tests.log" || echo "tests printed no summary"
if [ -s "${OUT}/scan.jsonl" ]; then
  python3 - "$OUT/scan.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
for r in rows:
    s = r["shape"]
    tag = f'{r["impl"]:<24} {r["dtype"]} b{s["batch"]} d{s["dim"]} l{s["len"]} n{s["dstate"]}'
    if r["impl"] == "mambalab_cuda":
        tag += f' {"det" if r["deterministic"] else "atomic"} ckpt{r["checkpoint_every"]}'
    print(f'{tag:<62} fwd {r["fwd_ms"]:8.3f} ms   fwd+bwd {r["fwd_bwd_ms"]:8.3f} ms')
print("targets (H100): fwd <= 0.25 ms, fwd+bwd <= 1.2 ms; mamba_ssm's kernel: 0.50 / 2.43 ms (not run here)")
PY
fi
exit "$tests_rc"
