// kernel/src is a stack: every import runs down it, never up or into a folder it does not
// name. Bottom to top (README, "Architecture"):
//   errors.ts, json-shape.ts,        the error type, the shape check of JSON files, the engine binding,
//   native.ts, files.ts              durable writes (and the @mambalab/contract package)
//   data/                            token shards (Arrow IPC), the manifest, batch samplers
//   corpus/                          fetch, verify, decompress, tokenize, prepare: raw text → data/
//   models/                          configs, patterns, presets, the Model, safetensors
//   train/, generate/                Trainer, runs, experiments; generation
//   display/, notebook/              MIME bundles, live outputs; the notebook runner
//   cli/                             `mambalab`
//   index.ts                         the public API, re-exported from the layers below
// Folders on one level may import each other.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, posix, relative } from 'node:path';
import { test } from 'node:test';

import ts from 'typescript';

import { repoRoot } from '../helpers.js';

const SOURCE = join(repoRoot, 'kernel', 'src');

/** Bottom first: a file may import files of its own level and the levels below. */
const LEVELS: readonly (readonly string[])[] = [
  ['errors.ts', 'json-shape.ts', 'native.ts', 'files.ts'],
  ['data'],
  ['corpus'],
  ['models'],
  ['train', 'generate'],
  ['display', 'notebook'],
  ['cli'],
  ['index.ts'],
];

/** The level of a file, by its first path segment under kernel/src ("models/model.ts" → models). */
function levelOf(file: string): number {
  const top = file.split('/')[0]!.replace(/\.js$/, '.ts'); // imports name the built .js
  const level = LEVELS.findIndex((names) => names.includes(top));
  if (level < 0) throw new Error(`kernel/src/${file}: '${top}' is on no level of the stack; add it to LEVELS in tests/kernel/stack.test.ts`);
  return level;
}

/** "file → specifier" for every relative import (static, type-only, re-export or dynamic) that runs up. */
function upwardImports(sources: ReadonlyMap<string, string>): string[] {
  const found: string[] = [];
  for (const [file, text] of sources) {
    const level = levelOf(file);
    for (const { fileName: specifier } of ts.preProcessFile(text, true, true).importedFiles) {
      if (!specifier.startsWith('.')) continue; // node: builtins and packages
      const target = posix.normalize(posix.join(posix.dirname(file), specifier));
      if (target.startsWith('..')) {
        found.push(`${file} → ${specifier} (outside kernel/src)`);
      } else if (levelOf(target) > level) {
        found.push(`${file} → ${specifier}`);
      }
    }
  }
  return found;
}

function kernelSources(): Map<string, string> {
  const walk = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
  return new Map(walk(SOURCE).map((path) => [relative(SOURCE, path).split('\\').join('/'), readFileSync(path, 'utf8')]));
}

test('every import in kernel/src runs down the stack', () => {
  const upward = upwardImports(kernelSources());
  assert.deepEqual(upward, [], `imports running up the stack (${LEVELS.map((l) => l.join(', ')).join(' < ')}):\n  ${upward.join('\n  ')}`);
});

test('the check sees static, type-only, re-exported and dynamic imports, and names each', () => {
  const planted = new Map([
    ['data/batch.ts', "import type { Model } from '../models/model.js';\nimport { MambalabError } from '../errors.js';"],
    ['models/model.ts', "export { Trainer } from '../train/trainer.js';\nimport { toBatch } from '../data/batch.js';"],
    ['corpus/slice.ts', "const { show } = await import('../display/show.js');\nimport { openDataset } from '../data/dataset.js';"],
    ['train/runs.ts', "import { Model } from '../models/model.js';\nimport { writeRun } from './files.js';\nimport { join } from 'node:path';"],
    ['cli/main.ts', "import { x } from '../../../tests/helpers.js';"],
  ]);
  assert.deepEqual(upwardImports(planted), [
    'data/batch.ts → ../models/model.js',
    'models/model.ts → ../train/trainer.js',
    'corpus/slice.ts → ../display/show.js',
    'cli/main.ts → ../../../tests/helpers.js (outside kernel/src)',
  ]);
  assert.throws(() => upwardImports(new Map([['plugins/x.ts', '']])), /'plugins' is on no level of the stack/);
});
