import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';

import { c4Lines, c4SampleRecords, slimPajamaRecords, zstdLargeWindow } from '../../../datasets/fixtures.js';
import { fetchC4, fetchNeoxTokenizer, fetchSlimPajama, type FetchProgress } from '../../../kernel/src/corpus/fetch.js';
import { loadTokenizer } from '../../../kernel/src/corpus/tokenizer.js';
import { MambalabError } from '../../../kernel/src/errors.js';
import { scratchDir } from '../../helpers.js';
import { NEOX_TOKENIZER } from './helpers.js';
import { closedPort, startHub, type ServedFile } from './hub-server.js';

const records = c4SampleRecords();
const shard = (from: number, to: number) => gzipSync(c4Lines(records.slice(from, to)));
const c4Files: ServedFile[] = [
  { path: 'en/c4-validation.00000-of-00008.json.gz', bytes: shard(0, 200) },
  { path: 'en/c4-validation.00001-of-00008.json.gz', bytes: shard(200, 400), dropAfter: 50_000 },
  { path: 'en/c4-validation.00002-of-00008.json.gz', bytes: shard(400, 500), listedSha256: 'f'.repeat(64) },
  { path: 'en/c4-validation.00003-of-00008.json.gz', bytes: shard(500, 600), missing: true },
  { path: 'en/c4-train.00000-of-01024.json.gz', bytes: shard(600, 700) },
];
const spRecords = slimPajamaRecords(records.slice(0, 300));
const spLines = (from: number, to: number) => Buffer.from(spRecords.slice(from, to).map((r) => JSON.stringify({ text: r.text, meta: { redpajama_set_name: r.set } }) + '\n').join(''));
const slimFiles: ServedFile[] = [
  { path: 'train/chunk1/example_train_0.jsonl.zst', bytes: await zstdLargeWindow(spLines(0, 150)) },
  { path: 'train/chunk1/example_train_1.jsonl.zst', bytes: await zstdLargeWindow(spLines(150, 300)), dropAfter: 30_000, noRange: true },
  { path: 'train/chunk2/example_train_0.jsonl.zst', bytes: await zstdLargeWindow(spLines(0, 10)) },
];
const hub = await startHub([
  { type: 'dataset', repo: 'allenai/c4', files: c4Files },
  { type: 'dataset', repo: 'cerebras/SlimPajama-627B', files: slimFiles },
  { type: 'model', repo: 'EleutherAI/gpt-neox-20b', files: [{ path: 'tokenizer.json', bytes: readFileSync(NEOX_TOKENIZER), git: true }, { path: 'config.json', bytes: Buffer.from('{}'), git: true }] },
]);
process.env.HF_ENDPOINT = hub.endpoint;
const fast = { retryDelayMs: 10 };

test('fetch c4: listed shards arrive verified, a dropped connection resumes with a Range request, a second run downloads nothing', async () => {
  const dir = scratchDir();
  const seen: FetchProgress[] = [];
  const result = await fetchC4({ split: 'validation', shards: [0, 1] }, { ...fast, dir, onProgress: (p) => seen.push({ ...p }) });
  assert.deepEqual(result, { files: [join(dir, 'c4', c4Files[0]!.path), join(dir, 'c4', c4Files[1]!.path)], downloaded: 2, present: 0 });
  for (const [i, file] of result.files.entries()) assert.ok(readFileSync(file).equals(c4Files[i]!.bytes));
  assert.ok(
    hub.requests.some((r) => r.path.startsWith('/cdn/') && r.range === 'bytes=50000-'),
    'the dropped download resumed from byte 50000',
  );
  const last = seen.at(-1)!;
  assert.deepEqual(last, { files: 2, filesDone: 2, bytesTotal: c4Files[0]!.bytes.length + c4Files[1]!.bytes.length, bytesDone: last.bytesTotal });
  assert.deepEqual(readdirSync(join(dir, 'c4', 'en')).sort(), [
    'c4-validation.00000-of-00008.json.gz',
    'c4-validation.00000-of-00008.json.gz.sha256',
    'c4-validation.00001-of-00008.json.gz',
    'c4-validation.00001-of-00008.json.gz.sha256',
  ]);

  const before = hub.requests.length;
  assert.deepEqual(await fetchC4({ split: 'validation', shards: [0, 1] }, { ...fast, dir }), { ...result, downloaded: 0, present: 2 });
  assert.equal(hub.requests.slice(before).filter((r) => !r.path.startsWith('/api/')).length, 0, 'nothing downloaded again');
});

test('fetch c4: a .part left by an interrupted run is continued from where it ends', async () => {
  const dir = scratchDir();
  const target = join(dir, 'c4', c4Files[0]!.path);
  mkdirSync(join(dir, 'c4', 'en'), { recursive: true });
  writeFileSync(`${target}.part`, c4Files[0]!.bytes.subarray(0, 1234));
  const before = hub.requests.length;
  await fetchC4({ split: 'validation', shards: [0] }, { ...fast, dir });
  assert.ok(readFileSync(target).equals(c4Files[0]!.bytes));
  assert.ok(hub.requests.slice(before).some((r) => r.range === 'bytes=1234-'));
  assert.equal(existsSync(`${target}.part`), false);
});

test('fetch c4: a checksum mismatch and a 404 fail naming the file; the good shard still arrives; nothing half-written stays', async () => {
  const dir = scratchDir();
  await assert.rejects(fetchC4({ split: 'validation', shards: [0, 2, 3] }, { ...fast, dir }), (e: unknown) => {
    assert.ok(e instanceof MambalabError);
    assert.match(e.message, /^2 of 3 downloads failed/);
    assert.match(e.message, /c4-validation\.00002-of-00008\.json\.gz: checksum mismatch: the listing says sha256 f{64}, the download has [0-9a-f]{64}/);
    assert.match(e.message, /resolve\/main\/en\/c4-validation\.00003-of-00008\.json\.gz: not found \(HTTP 404\)/);
    return true;
  });
  assert.deepEqual(readdirSync(join(dir, 'c4', 'en')).sort(), ['c4-validation.00000-of-00008.json.gz', 'c4-validation.00000-of-00008.json.gz.sha256']);
  await assert.rejects(fetchC4({ split: 'validation', shards: [9] }, { dir }), /there is no c4 en validation shard 9: the listing has 0 to 3 \(4 files\)/);
  await assert.rejects(fetchC4({ split: 'test', shards: [0] }, { dir }), /--split must be train or validation/);
  await assert.rejects(fetchC4({ variant: 'fr', split: 'train', shards: [0] }, { dir }), /--variant fr is not one of/);
});

test('fetch slimpajama: chunk files verified; a server that ignores Range gets the file started over', async () => {
  const dir = scratchDir();
  const before = hub.requests.length;
  const result = await fetchSlimPajama({ split: 'train', chunk: 1, files: [0, 1] }, { ...fast, dir });
  assert.equal(result.downloaded, 2);
  assert.ok(hub.requests.slice(before).some((r) => r.range === 'bytes=30000-'), 'asked for the rest after the drop (and got the whole file)');
  assert.ok(readFileSync(join(dir, 'slimpajama', 'train', 'chunk1', 'example_train_1.jsonl.zst')).equals(slimFiles[1]!.bytes));
  await assert.rejects(fetchSlimPajama({ split: 'train', chunk: 11, files: [0] }, { dir }), /--chunk must be 1 to 10 for train/);
  await assert.rejects(fetchSlimPajama({ split: 'train', chunk: 2, files: [0, 5] }, { dir }), /no slimpajama train\/chunk2 file 5: the listing has 0 to 0/);
});

test('fetch neox-tokenizer: a file outside LFS is verified by its git blob id, and loads', async () => {
  const dest = join(scratchDir(), 'tokenizer.json');
  assert.equal((await fetchNeoxTokenizer({ dest })).downloaded, 1);
  assert.equal(loadTokenizer('neox', { file: dest }).vocabSize, 50277);
});

test('fetch with no server to reach says the machine seems offline and what to do, without a stack trace', async () => {
  const saved = process.env.HF_ENDPOINT;
  process.env.HF_ENDPOINT = `http://127.0.0.1:${await closedPort()}`;
  try {
    await assert.rejects(fetchC4({ split: 'validation', shards: [0] }, { dir: scratchDir() }), (e: unknown) => {
      assert.ok(e instanceof MambalabError);
      assert.match(e.message, /^cannot reach 127\.0\.0\.1:\d+ \(ECONNREFUSED\): this machine seems to be offline\. Download the files elsewhere/);
      return true;
    });
  } finally {
    process.env.HF_ENDPOINT = saved;
  }
});
