#!/usr/bin/env bash
# On the GPU host: build the engine with its CUDA backend, run every CUDA op against the CPU
# reference and NCCL's sums (mambalab_gpu_tests), then the selective-scan benchmark beside the
# plain-PyTorch reference; then, with what tests/gpu/pack.sh carried in .gpu-carry, the model
# stages: build the addon, LM parity against the PyTorch reference, 300 C4 steps against the
# CPU, the kill test (SIGKILL and --resume, deterministic CUDA: tests/gpu/kill-test.sh),
# `train --gpus 2` beside one GPU, rerun and with --shard-optimizer (tests/gpu/train-gpus.sh;
# with one GPU it says NOT RUN),
# `mambalab bench train` beside the reference's training throughput, and `mambalab bench
# checkpoint` (BlackMamba 340M/1.5B checkpoint write and load times, the non-finite guard's cost
# per step). A short table comes last. Logs and JSON lines go to $OUT (default ./gpu-out): model
# results in lm.jsonl, their logs in lm-logs.tar.gz. Without a GPU it says so and exits 0. Exits
# nonzero when a test, a parity case, the 300-step check or the --gpus check fails.
#
#   bash tests/gpu/run.sh            # everything (about 9 minutes on an H100)
#   SKIP_BENCH=1 bash tests/gpu/run.sh       # no scan benchmark
#   SKIP_ATTENTION_BENCH=1 bash tests/gpu/run.sh   # no attention benchmark (ours beside PyTorch SDPA)
#   SKIP_REFERENCE=1 bash tests/gpu/run.sh   # without the (slow) PyTorch scan reference
#   PROFILE=1 bash tests/gpu/run.sh          # also ncu counters of the scan kernels
#   SKIP_LONG_SCAN_BENCH=1 bash tests/gpu/run.sh   # no scan along long sequences (ours, whole and in
#                                            # parts, beside mamba_ssm's kernel from $ANCHORS)
#   SCAN_PARTS="0 1 4 8 16 32"               # the --segments values that stage tries
#   SKIP_PARITY=1 / SKIP_TRAIN300=1 / SKIP_KILL=1 / SKIP_GPUS=1 / SKIP_TRAIN_BENCH=1 / SKIP_SCALING_BENCH=1 / SKIP_CHECKPOINT_BENCH=1 /
#   SKIP_GENERATE_BENCH=1 (bench generate, beside ../shared/anchors/generate_anchor.py when
#   carried as $ANCHORS, default .gpu-carry/anchors)
#                                            # skip one model stage
#   GENERATE_ANCHOR_ARGS="--sizes mamba-130m --lengths 128,1024"   # a shorter anchor run
#   GENERATE_ARGS="--lengths 128,1024"                              # and a shorter run of ours
#   BENCH_SPECS="transformer/v1:64x1024 ..." bash tests/gpu/run.sh   # other models for bench train
#   SKIP_LM=1 bash tests/gpu/run.sh          # none of the model stages
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
       cmake --build "$BUILD" --parallel --target mambalab_gpu_tests mambalab_bench_scan mambalab_bench_attention; } \
       >"$OUT/build.log" 2>&1; then
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
  for config in "bf16 0 64" "bf16 1 64" "bf16 0 32" "bf16 1 32" "bf16 1 16" "fp32 0 64" "fp32 1 64"; do
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

if [ -z "${SKIP_LONG_SCAN_BENCH:-}" ]; then
  # Issue 16: one long sequence leaves a whole-sequence scan with few blocks; in parts it fills
  # the GPU. Ours per shape and --segments value (0: the scan's own choice), then mamba_ssm's
  # kernel (scan_anchor.py --bench: the first three shapes) in the same call.
  echo "# scan along long sequences, beside mamba_ssm's kernel"
  : >"$OUT/scan_long.jsonl"
  for shape in "8 1536 2048" "64 1024 1024" "1 2048 131072" "1 1024 65536" "4 1024 16384" "16 1024 4096"; do
    set -- $shape
    for parts in ${SCAN_PARTS:-0 1}; do
      "$BUILD/mambalab_bench_scan" --batch "$1" --dim "$2" --len "$3" --segments "$parts" --warmup 3 --iters 20 \
        >>"$OUT/scan_long.jsonl" 2>>"$OUT/bench.log" || echo "benchmark failed: $shape parts $parts (see $OUT/bench.log)"
    done
  done
  ANCHORS=${ANCHORS:-.gpu-carry/anchors}
  if [ -f "$ANCHORS/scan_anchor.py" ]; then
    (cd "$ANCHORS" && PYTHONUNBUFFERED=1 python3 scan_anchor.py --bench) >>"$OUT/scan_long.jsonl" 2>>"$OUT/bench.log" ||
      echo "scan_anchor.py failed (see $OUT/bench.log)"
  fi
fi

if [ -z "${SKIP_ATTENTION_BENCH:-}" ]; then
  echo "# attention benchmark beside PyTorch SDPA"
  : >"$WORK/attention_ours.jsonl"
  for len in 1024 2048 4096 8192; do
    "$BUILD/mambalab_bench_attention" --len "$len" >>"$WORK/attention_ours.jsonl" 2>>"$OUT/bench.log" ||
      echo "attention benchmark failed at L $len (see $OUT/bench.log)"
  done
  PYTHONUNBUFFERED=1 python3 bench/reference/attention_reference.py --ours "$WORK/attention_ours.jsonl" \
    >"$OUT/attention.jsonl" 2>>"$OUT/bench.log" || {
    echo "attention_reference.py failed (see $OUT/bench.log)"
    cp "$WORK/attention_ours.jsonl" "$OUT/attention.jsonl"
  }
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

# The model stages, each guarded: one failing leaves the others to run.
lm_failed=0
lm_logs=$WORK/lm-logs
mkdir -p "$lm_logs"
: >"$OUT/lm.jsonl"
collect() {  # STAGE FILE: FILE's JSON lines into lm.jsonl, tagged with the stage
  python3 -c 'import json, sys
for line in open(sys.argv[2]):
    if line.startswith("{"): print(json.dumps({"stage": sys.argv[1], **json.loads(line)}))' "$1" "$2" >>"$OUT/lm.jsonl"
}
stage_start() { echo "# $1"; stage_started=$(date +%s); }
stage_end() { echo "  ($1: $(($(date +%s) - stage_started)) s)" | tee -a "$lm_logs/times.log"; }
stage_failed() {  # WHAT LOG
  tail -20 "$2"
  echo "$1 failed (see lm-logs/$(basename "$2") in $OUT/lm-logs.tar.gz)"
  lm_failed=1
}
verdict_stage() {  # STAGE SCRIPT WHAT: tests/gpu/SCRIPT.sh writes one JSON verdict line; lm.jsonl gets it, "ok" decides
  if NODE=$NODE CLI=$CLI bash "tests/gpu/$2.sh" "$WORK/$2.json" "$lm_logs" >>"$lm_logs/$2.log" 2>&1; then
    collect "$1" "$WORK/$2.json"
    python3 -c 'import json, sys; sys.exit(0 if json.load(open(sys.argv[1]))["ok"] else 1)' "$WORK/$2.json" || lm_failed=1
  else
    stage_failed "$3" "$lm_logs/$2.log"
  fi
}

addon_ok=
if [ -z "${SKIP_LM:-}" ]; then
  if [ ! -f .gpu-carry/node.xz ]; then
    echo "# model stages skipped: no .gpu-carry (run tests/gpu/pack.sh where Node is, and carry .gpu-carry)"
  else
    stage_start "addon (tests/gpu/build-addon.sh)"
    if BUILD=$BUILD bash tests/gpu/build-addon.sh >"$lm_logs/build-addon.log" 2>&1; then
      addon_ok=1
    else
      stage_failed "the addon build (so every model stage)" "$lm_logs/build-addon.log"
    fi
    stage_end addon
  fi
fi
NODE=.gpu-carry/bin/node
CLI=.gpu-carry/cli/dist/mambalab.mjs

if [ -n "$addon_ok" ] && [ -z "${SKIP_PARITY:-}" ]; then
  stage_start "LM parity (fp32, bf16) against the PyTorch reference"
  if "$NODE" .gpu-carry/cli/dist/lm-parity.mjs --work "$WORK/parity" --device cuda >"$lm_logs/parity.log" 2>&1; then
    PYTHONUNBUFFERED=1 python3 bench/reference/gpu_parity.py --work "$WORK/parity" --device cuda \
      >"$WORK/parity.jsonl" 2>>"$lm_logs/parity.log" || lm_failed=1
    collect parity "$WORK/parity.jsonl"
  else
    stage_failed "the parity driver" "$lm_logs/parity.log"
  fi
  stage_end parity
fi

if [ -n "$addon_ok" ] && [ -z "${SKIP_TRAIN300:-}" ]; then
  stage_start "300 C4 steps: GPU (bf16) against CPU, deterministic reruns"
  verdict_stage train300 train-compare "the 300-step comparison"
  stage_end train300
fi

if [ -n "$addon_ok" ] && [ -z "${SKIP_KILL:-}" ]; then
  stage_start "kill test: SIGKILL at random moments and inside checkpoint writes, --resume, CUDA deterministic"
  NODE=$NODE CLI=$CLI bash tests/gpu/kill-test.sh "$WORK/kill.json" "$lm_logs" >>"$lm_logs/kill-test-stage.log" 2>&1
  kill_rc=$?
  [ -s "$WORK/kill.json" ] && collect kill "$WORK/kill.json"
  [ "$kill_rc" -eq 0 ] || stage_failed "the kill test" "$lm_logs/kill-test.log"
  stage_end kill
fi

if [ -n "$addon_ok" ] && [ -z "${SKIP_GPUS:-}" ]; then
  stage_start "train --gpus 2: ranks on 2 GPUs summing through NCCL, beside one GPU (needs 2 GPUs)"
  verdict_stage train_gpus train-gpus "train --gpus 2"
  stage_end train_gpus
fi

if [ -n "$addon_ok" ] && [ -z "${SKIP_TRAIN_BENCH:-}" ]; then
  # With the anchors carried, the reference's scan is mamba_ssm's kernel (PyTorch + mamba_ssm).
  anchors=()
  [ -d .gpu-carry/anchors ] && anchors=(--anchors "$PWD/.gpu-carry/anchors")
  stage_start "bench train: ours, then the PyTorch reference${anchors:+ with the mamba_ssm scan}"
  # The shapes of `mambalab bench train --device cuda`'s defaults, passed to both sides.
  read -r -a specs <<<"${BENCH_SPECS:-mamba/v1:64x1024 moe-mamba/v1:64x1024 blackmamba/340m-1.5b:8x2048}"
  precision=()
  "$NODE" "$CLI" bench --help | grep -q -- '--precision' && precision=(--precision bf16)
  : >"$WORK/bench-ours.jsonl"
  for spec in "${specs[@]}"; do
    model=${spec%%/*} rest=${spec#*/}
    size=${rest%%:*} shape=${rest#*:}
    "$NODE" "$CLI" bench train --model "$model" --size "$size" --device cuda --json "${precision[@]}" \
      --batch-size "${shape%x*}" --seq-len "${shape#*x}" --warmup 3 --steps 10 \
      >>"$WORK/bench-ours.jsonl" 2>>"$lm_logs/bench-train.log" || echo "bench train failed: $spec (see lm-logs/bench-train.log)"
  done
  collect bench_ours "$WORK/bench-ours.jsonl"
  if "$NODE" .gpu-carry/cli/dist/preset-configs.mjs "${specs[@]}" >"$WORK/bench-configs.jsonl" 2>>"$lm_logs/bench-train.log"; then
    PYTHONUNBUFFERED=1 python3 bench/reference/train_reference.py --configs "$WORK/bench-configs.jsonl" \
      --warmup 1 --steps 5 --time-cap 30 "${anchors[@]}" >"$WORK/bench-ref.jsonl" 2>>"$lm_logs/bench-train.log" ||
      echo "train_reference.py failed (see lm-logs/bench-train.log)"
    collect bench_reference "$WORK/bench-ref.jsonl"
  fi
  stage_end bench
fi
if [ -n "$addon_ok" ] && [ -z "${SKIP_SCALING_BENCH:-}" ]; then
  stage_start "bench train --scaling: Mamba v1 at 65,536 tokens per step from 64 x 1024 to 1 x 65,536, and 1 x 131,072"
  if "$NODE" "$CLI" bench train --scaling --device cuda --json --warmup 2 --steps 5 >"$WORK/bench-scaling.jsonl" \
    2>>"$lm_logs/bench-scaling.log"; then
    collect scaling_bench "$WORK/bench-scaling.jsonl"
  else
    stage_failed "bench train --scaling" "$lm_logs/bench-scaling.log"
  fi
  stage_end scaling_bench
fi
if [ -n "$addon_ok" ] && [ -z "${SKIP_CHECKPOINT_BENCH:-}" ]; then
  stage_start "bench checkpoint: BlackMamba 340M/1.5B checkpoint write and load, the guard's cost per step"
  # One checkpoint (about 17 GiB) on disk at a time, in the work directory.
  if "$NODE" "$CLI" bench checkpoint --model blackmamba --size 340m-1.5b --device cuda --json --dir "$WORK" \
    >"$WORK/bench-checkpoint.jsonl" 2>>"$lm_logs/bench-checkpoint.log"; then
    collect checkpoint_bench "$WORK/bench-checkpoint.jsonl"
  else
    stage_failed "bench checkpoint" "$lm_logs/bench-checkpoint.log"
  fi
  stage_end checkpoint_bench
fi
if [ -n "$addon_ok" ] && [ -z "${SKIP_GENERATE_BENCH:-}" ]; then
  stage_start "bench generate: ms/token at batch 1 after 128..8192-token prompts, beside mamba_ssm's generate(cg=True)"
  # shellcheck disable=SC2086  # GENERATE_ARGS is a list of flags
  if "$NODE" "$CLI" bench generate --device cuda --json ${GENERATE_ARGS:-} >"$WORK/bench-generate.jsonl" 2>>"$lm_logs/bench-generate.log"; then
    collect generate_bench "$WORK/bench-generate.jsonl"
  else
    stage_failed "bench generate" "$lm_logs/bench-generate.log"
  fi
  # The anchor (../shared/anchors, carried as $ANCHORS) in the same call: figures are compared only so.
  ANCHORS=${ANCHORS:-.gpu-carry/anchors}
  if [ -f "$ANCHORS/generate_anchor.py" ]; then
    # shellcheck disable=SC2086  # GENERATE_ANCHOR_ARGS is a list of flags
    python3 "$ANCHORS/generate_anchor.py" ${GENERATE_ANCHOR_ARGS:---lengths 128,512,1024,2048,4096,8192} >"$WORK/generate-anchor.jsonl" \
      2>>"$lm_logs/bench-generate.log" && collect generate_anchor "$WORK/generate-anchor.jsonl" ||
      echo "generate_anchor.py failed (see lm-logs/bench-generate.log)"
  fi
  stage_end generate_bench
fi
tar -czf "$OUT/lm-logs.tar.gz" -C "$WORK" lm-logs

echo
echo "== summary =="
grep -E '^(not ok|[0-9]+ passed)|NOT RUN' "$OUT/gpu_tests.log" || echo "tests printed no summary"
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
print("issue 16 target: bf16 fwd+bwd <= 0.9 ms (b8 d1536 l2048 n16)")
PY
fi
if [ -s "${OUT}/scan_long.jsonl" ]; then
  python3 - "$OUT/scan_long.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
key = lambda r: (r["dtype"], r["shape"]["batch"], r["shape"]["dim"], r["shape"]["len"])
anchor = {key(r): r for r in rows if r["impl"] == "mamba_ssm"}
print("scan along the sequence (bf16 unless said; ns per channel-step = fwd+bwd / (b·l·d)):")
for r in rows:
    s, a = r["shape"], anchor.get(key(r))
    tag = f'{r["impl"]:<14} {r["dtype"]:<8} b{s["batch"]} d{s["dim"]} l{s["len"]}'
    if r["impl"] == "mambalab_cuda":
        tag += f' parts {r["parts"]}'
    line = f'{tag:<50} fwd {r["fwd_ms"]:8.3f} ms   fwd+bwd {r["fwd_bwd_ms"]:8.3f} ms'
    if r["impl"] == "mambalab_cuda":
        line += f'   {r["ns_per_channel_step"]:.4f} ns/ch-step'
        if a:
            line += f'   mamba_ssm/ours fwd+bwd {a["fwd_bwd_ms"] / r["fwd_bwd_ms"]:.2f}x'
    print(line)
PY
fi
if [ -s "$OUT/attention.jsonl" ]; then
  python3 - "$OUT/attention.jsonl" <<'PY'
import json, sys
for r in (json.loads(l) for l in open(sys.argv[1]) if l.strip()):
    s = r["shape"]
    tag = f'{r["impl"]:<14} {r["dtype"]} b{s["batch"]} h{s["heads"]}/{s["kv_heads"]} d{s["head_dim"]} L{s["len"]:<5}'
    print(f'{tag} fwd {r["fwd_ms"]:8.3f} ms ({r["fwd_tflops"]:5.0f} TFLOP/s)   fwd+bwd {r["fwd_bwd_ms"]:8.3f} ms ({r["fwd_bwd_tflops"]:5.0f})')
PY
fi
if [ -s "$OUT/lm.jsonl" ]; then
  python3 tests/gpu/summarize_lm.py "$OUT/lm.jsonl"
fi
[ "$tests_rc" -ne 0 ] && exit "$tests_rc"
exit "$lm_failed"
