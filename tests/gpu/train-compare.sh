#!/usr/bin/env bash
# 300 training steps on the C4 sample, on the GPU (bf16) and on the CPU (fp32) with the same
# seed and batch order, then twice more on the GPU with --deterministic; compares the curves
# (tests/gpu/compare_curves.py) and writes its JSON verdict line to RESULT. The CPU run goes
# in the background while the GPU runs, so the stage costs about the CPU run's time.
#
#   bash tests/gpu/train-compare.sh RESULT.json LOG_DIR
#   env: MODEL/SIZE (default mamba/tiny: the CPU side takes well under a few minutes on 16
#        cores), STEPS (300), GPU_DEVICE (cuda; cpu to try the script without a GPU),
#        NODE, CLI, DATA (default: what tests/gpu/pack.sh and build-addon.sh put in .gpu-carry)
set -uo pipefail
cd "$(dirname "$0")/../.."
result=${1:?usage: train-compare.sh RESULT.json LOG_DIR}
logs=${2:?usage: train-compare.sh RESULT.json LOG_DIR}
MODEL=${MODEL:-mamba} SIZE=${SIZE:-tiny} STEPS=${STEPS:-300} GPU_DEVICE=${GPU_DEVICE:-cuda}
NODE=${NODE:-.gpu-carry/bin/node}
CLI=${CLI:-.gpu-carry/cli/dist/mambalab.mjs}
DATA=${DATA:-.gpu-carry/data/c4-sample.00000-of-00001.json.gz}
work=$(mktemp -d)
mkdir -p "$logs"

# Flags the CLI may not have yet (they arrive with its CUDA options): used when it lists them.
help=$("$NODE" "$CLI" train --help)
gpu_flags=()
grep -q -- '--precision' <<<"$help" && gpu_flags+=(--precision bf16)
deterministic=()
grep -q -- '--deterministic' <<<"$help" && deterministic=(--deterministic)

train() {  # NAME DEVICE [FLAGS...]: losses to $work/NAME.jsonl, progress to $logs/train-NAME.log
  local name=$1 device=$2
  shift 2
  "$NODE" "$CLI" train --model "$MODEL" --size "$SIZE" --steps "$STEPS" --data "$DATA" --seed 0 --json \
    --device "$device" --out "$work/run-$name" "$@" >"$work/$name.jsonl" 2>"$logs/train-$name.log"
  local rc=$?
  [ $rc -eq 0 ] || echo "train-compare: the $name run failed (exit $rc; see $logs/train-$name.log)" >&2
  return $rc
}

started=$(date +%s)
train cpu cpu &
cpu_pid=$!
train cuda "$GPU_DEVICE" "${gpu_flags[@]}"
train cuda-det-1 "$GPU_DEVICE" "${gpu_flags[@]}" "${deterministic[@]}"
train cuda-det-2 "$GPU_DEVICE" "${gpu_flags[@]}" "${deterministic[@]}"
wait "$cpu_pid"
echo "train-compare: 4 runs of $STEPS steps ($MODEL/$SIZE) in $(($(date +%s) - started)) s" >&2

gpu_name=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
python3 tests/gpu/compare_curves.py --cpu "$work/cpu.jsonl" --cuda "$work/cuda.jsonl" --gpu "${gpu_name:-none}" \
  --deterministic "$work/cuda-det-1.jsonl" "$work/cuda-det-2.jsonl" >"$work/verdict.json" || exit 1
# The verdict with what was run, and the curves, for plotting later.
python3 - "$work" "$result" "$MODEL/$SIZE" "$STEPS" "$GPU_DEVICE" "${#deterministic[@]}" "${gpu_flags[*]}" <<'PY'
import json, sys
work, result, model, steps, device, det, flags = sys.argv[1:]
verdict = json.load(open(f"{work}/verdict.json"))
curves = {name: [json.loads(l)["loss"] for l in open(f"{work}/{name}.jsonl") if l.startswith("{")] for name in ("cpu", "cuda", "cuda-det-1")}
verdict.update(model=model, steps=int(steps), gpu_device=device, deterministic_flag=det != "0",
               gpu_flags=flags or "(CLI defaults)", curves=curves)
json.dump(verdict, open(result, "w"))
print(json.dumps({k: v for k, v in verdict.items() if k != "curves"}))
PY
