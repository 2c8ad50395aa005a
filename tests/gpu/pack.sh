#!/usr/bin/env bash
# Runs HERE, before a device call: writes into .gpu-carry/ (git-ignored) what the GPU host
# lacks for tests/gpu/run.sh's model stages. The host has no Node, npm or network, and the
# call carries at most 64 MiB of ignored paths, so instead of node_modules it gets:
#   node.xz                         this machine's Node (../shared/gpu/pack-node.sh)
#   cli/dist/mambalab.mjs           the CLI as one ESM bundle
#   cli/dist/lm-parity.mjs          the GPU LM parity driver (tests/gpu/lm-parity.mjs), bundled
#   cli/dist/preset-configs.mjs     preset configs for the PyTorch training benchmark
#   cli/dist/kill-test.mjs          the kill test's driver (tests/gpu/kill-test.mjs), bundled
#   node_modules/node-addon-api/    headers + index.js: CMakeLists asks node for their path
#   node-api-headers/include/       the Node-API C headers (CMAKE_JS_INC)
#   data/c4-sample.00000-of-00001.json.gz   the 1000-document C4 sample (datasets/c4, where run.sh looks)
#   anchors/                        ../shared/anchors: mamba_ssm's scan kernel for the reference
# The addon itself is compiled there by tests/gpu/build-addon.sh (into .gpu-carry/native),
# since the bundles load it from <bundle dir>/../../native/build/Release/mambalab.node.
#
#   bash tests/gpu/pack.sh        then name .gpu-carry in the device call's carry
set -euo pipefail
cd "$(dirname "$0")/../.."
CARRY=.gpu-carry
LIMIT_MIB=64
C4_SAMPLE=datasets/c4/c4-sample.00000-of-00001.json.gz

if [ ! -d node_modules/esbuild ] || [ ! -d node_modules/node-addon-api ]; then
  echo "pack: node_modules lacks esbuild or node-addon-api; run npm install at the repo root" >&2
  exit 1
fi

# Built or unpacked on the host: a local copy (from trying build-addon.sh here) would only
# push the carry over its limit.
rm -rf "$CARRY/native" "$CARRY/bin" "$CARRY/cli" "$CARRY/node_modules" "$CARRY/node-api-headers" "$CARRY/data" "$CARRY/anchors"
mkdir -p "$CARRY"

[ -s "$CARRY/node.xz" ] || ../shared/gpu/pack-node.sh "$CARRY"

echo "pack: compiling kernel/ (tsc -b)"
node node_modules/typescript/bin/tsc -b kernel

# Externals are loaded lazily by commands the host does not run: tslab (the Jupyter
# kernel), zeromq (notebook run), zstd-napi (.zst input), tokenizers (bench tokenize).
# Everything else is inlined.
bundle() {
  node_modules/.bin/esbuild "$1" --bundle --format=esm --platform=node --target=node20 \
    --external:zstd-napi --external:tokenizers --external:tslab --external:zeromq --log-level=warning \
    "--banner:js=import { createRequire as __bundleRequire } from 'module'; const require = __bundleRequire(import.meta.url);" \
    --outfile="$2"
}
entry=$(sed -n 's/^import "\.\.\/\(dist\/[^"]*\)";$/kernel\/\1/p' kernel/bin/mambalab.js)
if [ ! -f "$entry" ]; then
  echo "pack: cannot find the CLI entry that kernel/bin/mambalab.js imports (got '$entry')" >&2
  exit 1
fi
echo "pack: bundling $entry and the drivers in tests/gpu"
bundle "$entry" "$CARRY/cli/dist/mambalab.mjs"
for driver in lm-parity preset-configs kill-test; do
  bundle "tests/gpu/$driver.mjs" "$CARRY/cli/dist/$driver.mjs"
done

addon_api=$CARRY/node_modules/node-addon-api
mkdir -p "$addon_api" "$CARRY/node-api-headers"
cp node_modules/node-addon-api/{package.json,index.js,napi.h,napi-inl.h,napi-inl.deprecated.h} "$addon_api/"
cp -r node_modules/node-api-headers/include "$CARRY/node-api-headers/"

mkdir -p "$CARRY/data"
cp "$C4_SAMPLE" "$CARRY/data/"
cp -r ../shared/anchors "$CARRY/anchors"

size_kib=$(du -sk "$CARRY" | cut -f1)
echo "pack: $CARRY holds $((size_kib / 1024)) MiB:"
du -sh "$CARRY"/* | sed 's/^/  /'
if [ "$size_kib" -ge $((LIMIT_MIB * 1024)) ]; then
  echo "pack: $CARRY is over the device call's ${LIMIT_MIB} MiB carry limit" >&2
  exit 1
fi
