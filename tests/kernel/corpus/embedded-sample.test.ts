// The C4 sample travels inside the repository: a checkout with nothing beside it and no network
// still gets its default C4 slice from datasets/c4.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { C4_SAMPLE_FILE } from '../../../kernel/src/corpus/paths.js';
import { repoRoot, scratchDir } from '../../helpers.js';

test('the embedded C4 sample is the one its data card describes', () => {
  assert.equal(C4_SAMPLE_FILE, join(repoRoot, 'datasets', 'c4', 'c4-sample.00000-of-00001.json.gz'));
  const bytes = readFileSync(C4_SAMPLE_FILE);
  assert.equal(bytes.length, 893_110);
  assert.equal(createHash('sha256').update(bytes).digest('hex'), '75cdeb8bacc1fd115eaf338290fc7c6ac60e48c9f88d12250511666a201eee1c');
  const card = readFileSync(join(repoRoot, 'datasets', 'README.md'), 'utf8');
  assert.match(card, /75cdeb8bacc1fd115eaf338290fc7c6ac60e48c9f88d12250511666a201eee1c/);
  assert.match(card, /ODC-BY 1\.0/);
});

test('defaultC4Slice in a checkout that is not beside ../shared, offline, prepares the embedded sample', () => {
  // A copy of the sources and datasets/ in a fresh temporary directory: nothing named shared
  // is beside it or inside it, so only the repository's own copy can be found.
  const clone = join(scratchDir('mambalab-clone-'), 'mambalab');
  cpSync(join(repoRoot, 'kernel', 'src'), join(clone, 'kernel', 'src'), { recursive: true });
  cpSync(join(repoRoot, 'kernel', 'package.json'), join(clone, 'kernel', 'package.json'));
  cpSync(join(repoRoot, 'datasets'), join(clone, 'datasets'), { recursive: true });
  symlinkSync(join(repoRoot, 'node_modules'), join(clone, 'node_modules'));
  assert.ok(!existsSync(join(clone, '..', 'shared')) && !existsSync(join(clone, 'shared')));
  const script = join(clone, 'slice.mts');
  writeFileSync(
    script,
    `import { defaultC4Slice } from './kernel/src/corpus/slice.ts';
const log: string[] = [];
const slice = await defaultC4Slice({ log: (line) => log.push(line) });
console.log(JSON.stringify({ log, dir: slice.dir, info: slice.info() }));\n`,
  );
  const cache = join(clone, 'cache');
  const run = spawnSync(process.execPath, ['--import', 'tsx', script], {
    cwd: repoRoot,
    env: { ...process.env, MAMBALAB_DATA_DIR: cache, MAMBALAB_OFFLINE: '1' },
    encoding: 'utf8',
    timeout: 120_000,
  });
  assert.equal(run.status, 0, run.stderr);
  const out = JSON.parse(run.stdout) as { log: string[]; dir: string; info: { documents: number; tokens: number } };
  assert.deepEqual(out.log, [`preparing ${join(cache, 'prepared', 'c4-sample-gpt2')} (gpt2 tokens) from ${join(clone, 'datasets', 'c4', 'c4-sample.00000-of-00001.json.gz')}`]);
  assert.equal(out.dir, join(cache, 'prepared', 'c4-sample-gpt2'));
  assert.equal(out.info.documents, 1000);
  assert.equal(out.info.tokens, 479_224);
});
