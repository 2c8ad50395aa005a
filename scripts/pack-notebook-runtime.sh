#!/usr/bin/env bash
# Packs what `mambalab notebook run` needs at run time on a machine without npm or network (the
# GPU host): the compiled kernel and contract, and the kernel's run-time dependencies from
# node_modules (tslab with its TypeScript, zeromq, apache-arrow, gpt-tokenizer, zstd-napi and
# what they require, per package-lock.json), trimmed to what runs on linux-x64 with Node 20:
# no sources, source maps, install-time helpers, other platforms' binaries or the TypeScript
# server. About 5 MB as .tar.xz (47 MiB unpacked).
#
#   bash scripts/pack-notebook-runtime.sh [OUT.tar.xz]     (default .gpu-carry/notebook-runtime.tar.xz)
#
# On the host, from the checkout's root, with Node and the addon (tests/gpu/build-addon.sh)
# at native/build/Release/mambalab.node:
#   tar -xJf .gpu-carry/notebook-runtime.tar.xz
#   node kernel/bin/mambalab.js notebook run notebooks/02-moe-mamba.ipynb --param scale=paper --out notebooks/02-moe-mamba.ipynb
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=$(realpath -m "${1:-.gpu-carry/notebook-runtime.tar.xz}")

for built in kernel/dist/cli/main.js contract/dist/index.js; do
  if [ ! -f "$built" ]; then
    echo "pack-notebook-runtime: $built is missing; run npm install (or npm run build) first" >&2
    exit 1
  fi
done

STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT

# The kernel's dependencies and theirs, as npm laid them out (nested copies where it nested them).
node -e '
const { packages } = JSON.parse(require("fs").readFileSync("package-lock.json", "utf8"));
const found = new Set();
const resolve = (from, name) => {
  for (let base = from; ; base = base.slice(0, Math.max(0, base.lastIndexOf("/node_modules/")))) {
    const path = `${base ? base + "/" : ""}node_modules/${name}`;
    if (packages[path]) return path;
    if (!base) return undefined;
  }
};
const visit = (path) => {
  if (!path || found.has(path)) return;
  found.add(path);
  const entry = packages[path];
  for (const name of Object.keys({ ...entry.dependencies, ...entry.optionalDependencies })) visit(resolve(path, name));
};
for (const name of Object.keys(packages.kernel.dependencies)) visit(resolve("", name));
for (const path of found) if (path !== "node_modules/@mambalab/contract" && require("fs").existsSync(path)) console.log(path);
' | while read -r path; do
  mkdir -p "$STAGE/$(dirname "$path")"
  cp -r "$path" "$STAGE/$path"
done

NM=$STAGE/node_modules
# The workspace packages, linked as npm links them.
mkdir -p "$NM/@mambalab"
ln -s ../../contract "$NM/@mambalab/contract"
ln -s ../kernel "$NM/mambalab"

# zeromq: the linux-x64 glibc build made for Node 22's ABI, the one of its prebuilt addons that
# needs no newer glibc than 2.25 (the Node 20 one needs 2.38) and loads in Node 20 (Node-API).
node -e '
const fs = require("fs");
const file = process.argv[1];
const manifest = JSON.parse(fs.readFileSync(file, "utf8"));
const kept = Object.entries(manifest).filter(([key]) => { const c = JSON.parse(key); return c.os === "linux" && c.arch === "x64" && c.libc === "glibc" && c.abi === 127; });
if (kept.length !== 1) { console.error(`pack-notebook-runtime: expected one linux-x64 glibc ABI-127 zeromq addon, found ${kept.length}`); process.exit(1); }
fs.writeFileSync(file, JSON.stringify(Object.fromEntries(kept)));
console.log(kept[0][1]);
' "$NM/zeromq/build/manifest.json" >"$STAGE/zeromq-addon"
addon=$(cat "$STAGE/zeromq-addon")
mv "$NM/zeromq/build/$addon" "$STAGE/addon.node"
rm -rf "$NM/zeromq/build"/{darwin,linux,win32} "$NM/zeromq/src" "$NM/zeromq/script"
mkdir -p "$NM/zeromq/build/$(dirname "$addon")"
mv "$STAGE/addon.node" "$NM/zeromq/build/$addon"
# cmake-ts: only the loader zeromq calls.
find "$NM/cmake-ts" -mindepth 1 -maxdepth 1 ! -name build ! -name package.json -exec rm -rf {} +
find "$NM/cmake-ts/build" -mindepth 1 -maxdepth 1 ! -name loader.js -exec rm -rf {} +
# tslab's TypeScript: the compiler library and lib.*.d.ts, not tsc, the server or its locales.
ts=$NM/@tslab/typescript-for-tslab/lib
rm -f "$ts"/tsserver.js "$ts"/tsserverlibrary.* "$ts"/typingsInstaller.js "$ts"/tsc.js "$ts"/watchGuard.js
find "$ts" -mindepth 1 -type d -exec rm -rf {} +
# gpt-tokenizer: its ESM build (the GPT-2 ranks among it), not CommonJS, sources or .tiktoken data.
rm -rf "$NM/gpt-tokenizer"/{cjs,src,data} "$NM/gpt-tokenizer/esm/fixtures"
# zstd-napi: the built binding, not zstd's sources or the objects it was linked from.
rm -rf "$NM/zstd-napi"/{deps,src,node_modules} "$NM/zstd-napi/build/deps" "$NM/zstd-napi/build/Release"/{obj.target,zstd.a}
rm -rf "$NM/apache-arrow/src"
# Install-time only (zstd-napi's prebuild-install and what it pulls in).
rm -rf "$NM"/{prebuild-install,node-abi,rc,tar-fs,tar-stream,simple-get}
find "$NM" -name '*.map' -delete

mkdir -p "$STAGE/kernel" "$STAGE/contract" "$(dirname "$OUT")"
cp -r kernel/dist "$STAGE/kernel/dist"
cp -r contract/dist "$STAGE/contract/dist"
tar -C "$STAGE" -cJf "$OUT.tmp" node_modules kernel/dist contract/dist
mv "$OUT.tmp" "$OUT"
echo "pack-notebook-runtime: $OUT: $(du -h "$OUT" | cut -f1) ($(du -sh "$NM" | cut -f1) of node_modules unpacked)"
