#!/usr/bin/env bash
# `mambalab train --gpus N` on the GPU host (issue 18): N ranks, one per GPU, summing gradients
# through NCCL, beside one GPU training the same global batch with the same seed and batch order,
# all with --deterministic, the N-GPU run twice, then once more with --shard-optimizer. Writes
# one JSON verdict line to RESULT: the N-GPU curve must track the one-GPU curve (window means
# within TOLERANCE, as tests/gpu/compare_curves.py measures), the two N-GPU runs must be
# bit-identical (NCCL's order of the sum is fixed for one machine), and so must the sharded run
# be to them (losses, final weights and optimizer state). With fewer than N GPUs it writes a verdict saying
# it was not run, says so on stderr, and exits 0.
#
#   bash tests/gpu/train-gpus.sh RESULT.json LOG_DIR
#   env: GPUS (2), MODEL/SIZE (mamba/tiny), STEPS (100), TOLERANCE (0.02), PRECISION (bf16),
#        NODE, CLI, DATA (default: what tests/gpu/pack.sh and build-addon.sh put in .gpu-carry)
set -uo pipefail
cd "$(dirname "$0")/../.."
result=${1:?usage: train-gpus.sh RESULT.json LOG_DIR}
logs=${2:?usage: train-gpus.sh RESULT.json LOG_DIR}
GPUS=${GPUS:-2} MODEL=${MODEL:-mamba} SIZE=${SIZE:-tiny} STEPS=${STEPS:-100} TOLERANCE=${TOLERANCE:-0.02}
PRECISION=${PRECISION:-bf16}
NODE=${NODE:-.gpu-carry/bin/node}
CLI=${CLI:-.gpu-carry/cli/dist/mambalab.mjs}
DATA=${DATA:-.gpu-carry/data/c4-sample.00000-of-00001.json.gz}
work=$(mktemp -d)
mkdir -p "$logs"

visible=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ')
if [ "$visible" -lt "$GPUS" ]; then
  echo "train-gpus: NOT RUN: --gpus $GPUS needs $GPUS GPUs, $visible visible" >&2
  printf '{"name": "train_gpus", "run": false, "ok": true, "gpus": %d, "visible": %d, "verdict": "%d GPUs needed, %d visible"}\n' \
    "$GPUS" "$visible" "$GPUS" "$visible" >"$result"
  exit 0
fi

train() {  # NAME [FLAGS...]: losses to $work/NAME.jsonl, progress to $logs/train-gpus-NAME.log
  local name=$1
  shift
  "$NODE" "$CLI" train --model "$MODEL" --size "$SIZE" --steps "$STEPS" --data "$DATA" --seed 0 --json \
    --precision "$PRECISION" --deterministic --out "$work/run-$name" "$@" >"$work/$name.jsonl" 2>"$logs/train-gpus-$name.log"
  local rc=$?
  [ $rc -eq 0 ] || echo "train-gpus: the $name run failed (exit $rc; see $logs/train-gpus-$name.log)" >&2
  return $rc
}

started=$(date +%s)
train one --device cuda || exit 1
train gpus-1 --gpus "$GPUS" || exit 1
train gpus-2 --gpus "$GPUS" || exit 1
train gpus-sharded --gpus "$GPUS" --shard-optimizer || exit 1
echo "train-gpus: 4 runs of $STEPS steps ($MODEL/$SIZE, $PRECISION) in $(($(date +%s) - started)) s" >&2

gpu_name=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
python3 - "$work" "$result" "$MODEL/$SIZE" "$STEPS" "$GPUS" "$TOLERANCE" "$PRECISION" "$logs/train-gpus-gpus-1.log" "$gpu_name" <<'PY'
import datetime, json, statistics, sys
sys.path.insert(0, "tests/gpu")
from compare_curves import compare_identical, compare_tracks, losses

work, result, model, steps, gpus, tolerance, precision, log, gpu = sys.argv[1:]
one, first, second = (losses(f"{work}/{name}.jsonl") for name in ("one", "gpus-1", "gpus-2"))
rows = {name: [json.loads(l) for l in open(f"{work}/{name}.jsonl") if l.startswith("{")] for name in ("one", "gpus-1")}
tokens_per_s = {name: statistics.median(r["tokens_per_s"] for r in rs[len(rs) // 2:]) for name, rs in rows.items()}  # warm steps
nccl = next((line.strip() for line in open(log) if line.startswith("gpus: ")), None)
tracks = compare_tracks(one, first, 25, float(tolerance))
same = compare_identical(first, second)
def checkpoint(run):  # the final weights and optimizer state, as bytes
    return [open(f"{work}/run-{run}/checkpoint/{f}", "rb").read() for f in ("model.safetensors", "optimizer.safetensors")]
sharded_identical = len(first) > 0 and losses(f"{work}/gpus-sharded.jsonl") == first and checkpoint("gpus-sharded") == checkpoint("gpus-1")
verdict = {
    "name": "train_gpus", "run": True, "model": model, "steps": int(steps), "gpus": int(gpus), "precision": precision,
    "gpu": gpu, "date": datetime.date.today().isoformat(), "nccl": nccl,
    "first_loss_one_gpu": one[0] if one else None, "first_loss_gpus": first[0] if first else None,
    "median_tokens_per_s_one_gpu": tokens_per_s["one"], "median_tokens_per_s_gpus": tokens_per_s["gpus-1"],
    **{k: v for k, v in tracks.items() if not k.endswith("_cpu") and not k.endswith("_cuda") and k != "cpu_step_noise_std"},
    "final_window_loss_one_gpu": tracks["final_window_loss_cpu"], "final_window_loss_gpus": tracks["final_window_loss_cuda"],
    **same, "sharded_identical": sharded_identical,
}
verdict["ok"] = tracks["tracks"] and same["deterministic_identical"] and sharded_identical
verdict["verdict"] = "; ".join([
    f"--gpus {gpus} tracks one GPU" if tracks["tracks"] else f"--gpus {gpus} does NOT track one GPU",
    "deterministic reruns identical" if same["deterministic_identical"] else "deterministic reruns DIFFER",
    "--shard-optimizer identical" if sharded_identical else "--shard-optimizer DIFFERS",
])
json.dump(verdict, open(result, "w"))
print(json.dumps(verdict))
PY
