#!/usr/bin/env bash
# On the GPU host: the kill test with --device cuda --deterministic. The carried CLI trains the
# tiny model on the C4 sample, is SIGKILLed 8 times (4 of them inside checkpoint writes) and
# resumed with --resume each time; the run directory must stay readable after every kill and
# the finished run must equal an uninterrupted one bit for bit (final checkpoint; every metrics
# line but tokens_per_s). Writes the verdict (one JSON line) to RESULT, the log to LOG_DIR.
#
#   bash tests/gpu/kill-test.sh RESULT.json LOG_DIR
#   env: MODEL/SIZE (default mamba/tiny), STEPS (40), KILLS (8), GPU_DEVICE (cuda; cpu to try
#        the script without a GPU), NODE, CLI, DATA (default: what tests/gpu/pack.sh carried)
set -uo pipefail
cd "$(dirname "$0")/../.."
result=${1:?usage: kill-test.sh RESULT.json LOG_DIR}
logs=${2:?usage: kill-test.sh RESULT.json LOG_DIR}
MODEL=${MODEL:-mamba} SIZE=${SIZE:-tiny} STEPS=${STEPS:-40} KILLS=${KILLS:-8} GPU_DEVICE=${GPU_DEVICE:-cuda}
NODE=${NODE:-.gpu-carry/bin/node}
CLI=${CLI:-.gpu-carry/cli/dist/mambalab.mjs}
DATA=${DATA:-.gpu-carry/data/c4-sample.00000-of-00001.json.gz}
work=$(mktemp -d)
mkdir -p "$logs"

started=$(date +%s)
"$NODE" .gpu-carry/cli/dist/kill-test.mjs --node "$NODE" --cli "$CLI" --data "$DATA" --work "$work" --device "$GPU_DEVICE" \
  --model "$MODEL" --size "$SIZE" --steps "$STEPS" --kills "$KILLS" >"$result" 2>"$logs/kill-test.log"
rc=$?
echo "kill-test: $KILLS kills of a $STEPS-step $MODEL/$SIZE run on $GPU_DEVICE in $(($(date +%s) - started)) s (exit $rc)" >&2
[ -s "$result" ] && cat "$result"
rm -rf "$work"
exit $rc
