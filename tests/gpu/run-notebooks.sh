#!/usr/bin/env bash
# On the GPU host: runs paper notebooks at scale=paper with `mambalab notebook run`, from what
# tests/gpu/pack.sh and scripts/pack-notebook-runtime.sh carried in .gpu-carry (the host has
# no npm, no Jupyter and no network). Each executed notebook goes to $OUT/<name>.ipynb, its
# log to $OUT/<name>.log, and its runs' small files (metrics, plots; no checkpoints) to
# $OUT/<name>-runs.tar.gz.
#
#   NOTEBOOKS="02-moe-mamba:120 03-blackmamba:80" bash tests/gpu/run-notebooks.sh
#     name:steps pairs (steps as the notebook's `steps` parameter); NOTEBOOK_TIMEOUT caps each (s)
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "no GPU: skipping"
  exit 0
fi
if [ ! -f .gpu-carry/notebook-runtime.tar.xz ]; then
  echo "run-notebooks: .gpu-carry/notebook-runtime.tar.xz is missing (bash scripts/pack-notebook-runtime.sh here first)" >&2
  exit 1
fi

echo "# addon"
bash tests/gpu/build-addon.sh >"$OUT/build-addon.log" 2>&1 || { tail -30 "$OUT/build-addon.log"; exit 1; }
mkdir -p native/build/Release
cp .gpu-carry/native/build/Release/mambalab.node native/build/Release/mambalab.node
tar -xJf .gpu-carry/notebook-runtime.tar.xz

failed=0
for spec in ${NOTEBOOKS:-02-moe-mamba:120}; do
  name=${spec%%:*} steps=${spec#*:}
  echo "# $name at scale=paper, $steps steps per model"
  start=$(date +%s)
  # Offline: the committed C4 sample, never a download.
  MAMBALAB_OFFLINE=1 timeout "${NOTEBOOK_TIMEOUT:-540}" .gpu-carry/bin/node kernel/bin/mambalab.js notebook run \
    "notebooks/$name.ipynb" --out "$OUT/$name.ipynb" --param scale=paper --param "steps=$steps" \
    >"$OUT/$name.log" 2>&1 || { failed=1; echo "$name failed (see $name.log)"; tail -15 "$OUT/$name.log"; }
  echo "  ($name: $(($(date +%s) - start)) s)"
  if [ -d "notebooks/runs/$name" ]; then
    tar -czf "$OUT/$name-runs.tar.gz" -C notebooks/runs --exclude=checkpoints --exclude=checkpoint "$name"
    # Paper-size checkpoints (up to ~18 GB each) would fill the host's disk over a few notebooks.
    find "notebooks/runs/$name" -name checkpoints -type d -prune -exec rm -rf {} +
  fi
done
exit "$failed"
