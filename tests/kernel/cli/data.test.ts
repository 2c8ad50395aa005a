import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';

import { encode } from 'gpt-tokenizer/encoding/gpt2';

import { c4Lines, c4SampleRecords } from '../../../datasets/fixtures.js';
import { C4_SAMPLE, repoRoot, scratchDir } from '../../helpers.js';
import { c4SampleTexts } from '../corpus/helpers.js';
import { closedPort, startHub } from '../corpus/hub-server.js';

const cli = join(repoRoot, 'kernel', 'src', 'cli', 'main.ts');

/** Runs the CLI without blocking this process (the Hub stand-in lives here and must answer). */
function mambalab(args: string[], env: Record<string, string> = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', cli, ...args], { cwd: repoRoot, env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill(), 5 * 60_000);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

const noStackTrace = (stderr: string) => assert.doesNotMatch(stderr, /^\s+at /m, `a stack trace in:\n${stderr}`);

test('data prepare, then data info --json, then train --data on the prepared folder', async () => {
  const out = join(scratchDir(), 'c4');
  const prepared = await mambalab(['data', 'prepare', '--input', C4_SAMPLE, '--tokenizer', 'gpt2', '--out', out]);
  assert.equal(prepared.status, 0, prepared.stderr);
  assert.equal(prepared.stdout.trim(), out);
  assert.match(prepared.stderr, /1,000 documents, [\d,]+ gpt2 tokens in 1 shard\(s\) from 2\.2 MB of text in [\d.]+ s/);

  const info = await mambalab(['data', 'info', out, '--json']);
  assert.equal(info.status, 0, info.stderr);
  const tokens = c4SampleTexts().reduce((n, t) => n + encode(t).length + 1, 0);
  assert.deepEqual(JSON.parse(info.stdout), { documents: 1000, tokens, tokenizer: 'gpt2', shards: 1 });
  const human = await mambalab(['data', 'info', out]);
  assert.match(human.stdout, /license +ODC-BY 1\.0/);
  assert.match(human.stdout, /sha256 75cdeb8bacc1fd115eaf338290fc7c6ac60e48c9f88d12250511666a201eee1c/);

  const train = await mambalab(['train', '--steps', '2', '--data', out, '--json', '--batch-size', '1', '--seq-len', '16', '--out', join(scratchDir(), 'run')]);
  assert.equal(train.status, 0, train.stderr);
  assert.match(train.stderr, /data c4 \(C4 \(allenai\/c4\); gpt2 tokens\): [\d,]+ train tokens in \d+ documents/);
  assert.equal(train.stdout.trim().split('\n').length, 2);
});

test('data prepare with a bad line fails naming file and line, no stack trace; flags are checked', async () => {
  const dir = scratchDir();
  const file = join(dir, 'bad.jsonl');
  writeFileSync(file, '{"text":"fine"}\n{"text":\n');
  const run = await mambalab(['data', 'prepare', '--input', file, '--out', join(dir, 'out')]);
  assert.equal(run.status, 2);
  assert.match(run.stderr, new RegExp(`^mambalab: ${file}:2: line 2 is not valid JSON`, 'm'));
  noStackTrace(run.stderr);
  const skip = await mambalab(['data', 'prepare', '--input', file, '--out', join(dir, 'out'), '--on-bad-record', 'skip']);
  assert.equal(skip.status, 0, skip.stderr);
  assert.match(skip.stderr, /1 documents, .* skipped 1 bad record\(s\), e\.g\. .*bad\.jsonl:2/);
  assert.match((await mambalab(['data', 'prepare', '--input', file, '--out', join(dir, 'o2'), '--tokenizer', 'bert'])).stderr, /--tokenizer: expected gpt2 or neox, got 'bert'/);
  assert.match((await mambalab(['data', 'fetch', 'c4', '--split', 'validation', '--shards', 'x'])).stderr, /--shards: expected numbers and ranges like 0-3,7; got 'x'/);
  assert.match((await mambalab(['data', 'frobnicate'])).stderr, /data: expected one of fetch, prepare, info, c4-slice, got 'frobnicate'/);
});

test('data fetch: files from the Hub (stand-in on 127.0.0.1) with a progress bar; offline, a message and exit 2', async () => {
  const records = c4SampleRecords();
  const hub = await startHub([
    {
      type: 'dataset',
      repo: 'allenai/c4',
      files: [
        { path: 'en/c4-validation.00000-of-00008.json.gz', bytes: gzipSync(c4Lines(records.slice(0, 100))) },
        { path: 'en/c4-validation.00001-of-00008.json.gz', bytes: gzipSync(c4Lines(records.slice(100, 200))) },
      ],
    },
  ]);
  const cache = scratchDir();
  const run = await mambalab(['data', 'fetch', 'c4', '--split', 'validation', '--shards', '0-1'], { HF_ENDPOINT: hub.endpoint, MAMBALAB_DATA_DIR: cache });
  assert.equal(run.status, 0, run.stderr);
  assert.deepEqual(run.stdout.trim().split('\n'), [0, 1].map((i) => join(cache, 'raw', 'c4', 'en', `c4-validation.0000${i}-of-00008.json.gz`)));
  assert.match(run.stderr, /█+ 2\/2 files {2}[\d.]+\/[\d.]+ MB/);
  assert.match(run.stderr, /2 downloaded, 0 already there/);

  const offline = await mambalab(['data', 'fetch', 'c4', '--split', 'validation', '--shards', '0'], { HF_ENDPOINT: `http://127.0.0.1:${await closedPort()}`, MAMBALAB_DATA_DIR: cache });
  assert.equal(offline.status, 2);
  assert.match(offline.stderr, /^mambalab: cannot reach 127\.0\.0\.1:\d+ \(ECONNREFUSED\): this machine seems to be offline/);
  noStackTrace(offline.stderr);
});

test('data c4-slice --offline --json prepares the sample slice in the cache and reports it', async () => {
  const cache = scratchDir();
  const run = await mambalab(['data', 'c4-slice', '--offline', '--json'], { MAMBALAB_DATA_DIR: cache });
  assert.equal(run.status, 0, run.stderr);
  const slice = JSON.parse(run.stdout);
  assert.equal(slice.dir, join(cache, 'prepared', 'c4-sample-gpt2'));
  assert.equal(slice.documents, 1000);
  assert.equal(slice.tokenizer, 'gpt2');
});
