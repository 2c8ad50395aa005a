#!/usr/bin/env bash
# On the GPU host: where a decode step's time goes. Runs `mambalab bench generate` for each
# model twice: plainly (ms/token as users see it, graphs replayed) and under Nsight Compute,
# which times every kernel of the replayed graph on its own (boost clocks, warm caches). The
# summary puts one token's kernels, by name, beside the measured ms/token: what the kernels
# cost and what is left over (launch gaps between dependent kernels).
#
#   MODELS="mamba-130m mamba-1.4b" bash bench/profile-decode.sh OUTDIR
# Needs what tests/gpu/pack.sh carries (.gpu-carry) and the addon tests/gpu/build-addon.sh built.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: profile-decode.sh OUTDIR}
mkdir -p "$out"
NODE=.gpu-carry/bin/node
CLI=.gpu-carry/cli/dist/mambalab.mjs
for model in ${MODELS:-mamba-130m mamba-1.4b}; do
  "$NODE" "$CLI" bench generate --model "$model" --device cuda --json --lengths 128 >"$out/$model-plain.json" \
    2>"$out/$model-plain.log" || { tail -5 "$out/$model-plain.log"; continue; }
  ncu --target-processes all --graph-profiling node --clock-control none --cache-control none \
    --metrics gpu__time_duration.sum,dram__bytes_read.sum --csv --log-file "$out/$model-ncu.csv" \
    "$NODE" "$CLI" bench generate --model "$model" --device cuda --json --lengths 128 --tokens 2 --warmup 1 \
    >"$out/$model-ncu-run.json" 2>"$out/$model-ncu-run.log" || { tail -5 "$out/$model-ncu-run.log"; continue; }
  python3 bench/decode_profile_summary.py "$out/$model-ncu.csv" "$out/$model-plain.json" "$model"
done
