#!/usr/bin/env node
// Makes the prebuilt extension visible to a JupyterLab: links labextension/prebuilt into
// <prefix>/share/jupyter/labextensions/mambalab-labextension (JupyterLab reads prebuilt
// extensions from there; --LabApp.extra_labextensions_path did not work for us).
//   node labextension/scripts/link.mjs                  the project's .venv (skips if there is none yet)
//   node labextension/scripts/link.mjs --prefix DIR     another environment (DIR = its sys.prefix)
//   node labextension/scripts/link.mjs --prefix DIR --copy   copy instead of link
// Idempotent: an existing link is replaced; a real directory there is replaced only with --copy.
import { cpSync, existsSync, lstatSync, mkdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

const here = new URL('..', import.meta.url).pathname;
const { name } = JSON.parse(readFileSync(join(here, 'package.json'), 'utf8'));
const args = process.argv.slice(2);
const prefixIndex = args.indexOf('--prefix');
const copy = args.includes('--copy');
const explicit = prefixIndex >= 0;
const prefix = explicit ? resolve(args[prefixIndex + 1] ?? '') : join(here, '..', '.venv');
const built = join(here, 'prebuilt');

if (!existsSync(join(built, 'package.json'))) {
  console.error(`link: ${built} has no build; run \`npm run build --workspace labextension\` first`);
  process.exit(1);
}
if (!existsSync(prefix)) {
  if (explicit) {
    console.error(`link: no environment at ${prefix}`);
    process.exit(1);
  }
  console.log(`link: no .venv yet at ${prefix}; skipped (run \`node labextension/scripts/link.mjs\` once it exists)`);
  process.exit(0);
}

const target = join(prefix, 'share', 'jupyter', 'labextensions', name);
mkdirSync(dirname(target), { recursive: true });
const existing = lstatSync(target, { throwIfNoEntry: false });
if (existing && !existing.isSymbolicLink() && !copy) {
  console.error(`link: ${target} is a real directory (an installed copy?); remove it or pass --copy to replace it`);
  process.exit(1);
}
if (existing) rmSync(target, { recursive: true, force: true });
if (copy) cpSync(built, target, { recursive: true });
else symlinkSync(built, target, 'dir');
console.log(`link: ${copy ? 'copied' : 'linked'} ${built} -> ${target}`);
