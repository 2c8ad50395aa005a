#!/usr/bin/env bash
# Runs on the GPU host (and anywhere with a CUDA compiler): builds the Node addon with plain
# cmake from what tests/gpu/pack.sh carried, since the host has no npm or cmake-js.
#   - unpacks the carried Node into .gpu-carry/bin/node (the run's `node`);
#   - configures native/ as cmake-js would (CMAKE_JS_VERSION set builds the addon target),
#     with the carried Node-API headers; CMakeLists.txt finds node-addon-api by running
#     `node -p "require('node-addon-api').include"` in native/, which NODE_PATH answers from
#     the carried copy;
#   - builds only the addon target, in $BUILD (shared with run.sh's build: the engine is
#     compiled once), and copies it where the bundles load it from.
#
#   bash tests/gpu/build-addon.sh     (BUILD=dir, MAMBALAB_CUDA=ON|AUTO|OFF to override)
set -euo pipefail
cd "$(dirname "$0")/../.."
CARRY=$PWD/.gpu-carry
BUILD=$(realpath -m "${BUILD:-native/build-gpu}")

for need in node.xz node_modules/node-addon-api/index.js node-api-headers/include/node_api.h; do
  if [ ! -e "$CARRY/$need" ]; then
    echo "build-addon: $CARRY/$need is missing; run tests/gpu/pack.sh first (where Node is)" >&2
    exit 1
  fi
done

mkdir -p "$CARRY/bin"
if [ ! -x "$CARRY/bin/node" ] || [ "$CARRY/node.xz" -nt "$CARRY/bin/node" ]; then
  xz -dc "$CARRY/node.xz" >"$CARRY/bin/node.tmp"
  chmod +x "$CARRY/bin/node.tmp"
  mv "$CARRY/bin/node.tmp" "$CARRY/bin/node"
fi
export PATH=$CARRY/bin:$PATH NODE_PATH=$CARRY/node_modules
echo "build-addon: node $(node --version) from $CARRY/bin"

generator=()
# An existing build dir keeps the generator it was made with.
if [ ! -f "$BUILD/CMakeCache.txt" ] && command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); fi
cmake -S native -B "$BUILD" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DMAMBALAB_CUDA="${MAMBALAB_CUDA:-ON}" \
  -DCMAKE_JS_VERSION=carried -DCMAKE_JS_INC="$CARRY/node-api-headers/include" \
  -DCMAKE_LIBRARY_OUTPUT_DIRECTORY="$BUILD/Release"
cmake --build "$BUILD" --parallel "$(nproc)" --target mambalab_addon

mkdir -p "$CARRY/native/build/Release"
cp "$BUILD/Release/mambalab.node" "$CARRY/native/build/Release/mambalab.node"
# Loading it proves the Node-API symbols resolve; info() says whether a GPU is usable.
node -e "const a = require(process.argv[1]); console.log('build-addon: loaded;', JSON.stringify(a.info()))" \
  "$CARRY/native/build/Release/mambalab.node"
