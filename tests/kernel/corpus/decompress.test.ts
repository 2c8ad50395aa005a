import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';

import { DecompressStream } from 'zstd-napi';

import { zstdLargeWindow } from '../../../datasets/fixtures.js';
import { readDecompressed, readDecompressedSync } from '../../../kernel/src/corpus/decompress.js';
import { MambalabError } from '../../../kernel/src/errors.js';
import { C4_SAMPLE, scratchDir } from '../../helpers.js';

async function readAll(file: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of readDecompressed(file)) chunks.push(c);
  return Buffer.concat(chunks);
}

async function decodesWithDefaults(compressed: Buffer): Promise<boolean> {
  const d = new DecompressStream();
  return new Promise((resolve) => {
    d.on('error', () => resolve(false));
    d.on('data', () => {});
    d.on('end', () => resolve(true));
    d.end(compressed);
  });
}

/** Both readers fail on file, with one message that names it and matches pattern. */
async function rejectsWith(file: string, pattern: RegExp): Promise<void> {
  let streamed: unknown;
  await readAll(file).catch((e: unknown) => (streamed = e));
  assert.ok(streamed instanceof MambalabError && pattern.test(streamed.message) && streamed.message.includes(file), `${file}: ${String(streamed)}`);
  assert.throws(() => readDecompressedSync(file), { name: 'MambalabError', message: streamed.message });
}

test('gzip: the real C4 sample streams out byte-identical to gunzip', async () => {
  const expected = gunzipSync(readFileSync(C4_SAMPLE));
  assert.ok((await readAll(C4_SAMPLE)).equals(expected));
  assert.ok(readDecompressedSync(C4_SAMPLE).equals(expected));
});

test('gzip: several members one after another are all read', async () => {
  const file = join(scratchDir(), 'two.json.gz');
  writeFileSync(file, Buffer.concat([gzipSync('{"text":"a"}\n'), gzipSync('{"text":"b"}\n')]));
  assert.equal((await readAll(file)).toString(), '{"text":"a"}\n{"text":"b"}\n');
  assert.equal(readDecompressedSync(file).toString(), '{"text":"a"}\n{"text":"b"}\n');
});

test('zstd: a frame with a 1 GiB window (long-distance matching) decodes, which default limits refuse', async () => {
  const data = gunzipSync(readFileSync(C4_SAMPLE));
  const compressed = await zstdLargeWindow(data);
  assert.equal(await decodesWithDefaults(compressed), false, 'the fixture should need a window above the default limit');
  const file = join(scratchDir(), 'example_train_0.jsonl.zst');
  writeFileSync(file, compressed);
  assert.ok((await readAll(file)).equals(data));
  assert.ok(readDecompressedSync(file).equals(data));
});

test('truncated, corrupt and misnamed files fail with the file named, never quietly short, streamed or whole alike', async () => {
  const dir = scratchDir();
  const data = gunzipSync(readFileSync(C4_SAMPLE));
  const gz = gzipSync(data);
  const zst = await zstdLargeWindow(data);
  const corrupt = (b: Buffer) => {
    const c = Buffer.from(b);
    for (let i = c.length >> 1; i < (c.length >> 1) + 64; i++) c[i]! ^= 0x5a;
    return c;
  };
  const cases: [string, Buffer, RegExp][] = [
    ['truncated.json.gz', gz.subarray(0, gz.length >> 1), /gzip data ends early.*truncated/],
    ['corrupt.json.gz', corrupt(gz), /corrupt gzip data|ends early/],
    ['truncated.jsonl.zst', zst.subarray(0, zst.length >> 1), /zstd data ends early.*truncated/],
    ['corrupt.jsonl.zst', corrupt(zst), /corrupt zstd data/],
    ['plain.json.gz', data.subarray(0, 1000), /the name says gzip but the data is not compressed/],
    ['gzip.jsonl.zst', gz, /the name says zstd but the data is gzip/],
    ['empty.jsonl.zst', Buffer.alloc(0), /the name says zstd but the file is empty/],
  ];
  for (const [name, bytes, pattern] of cases) {
    const file = join(dir, name);
    writeFileSync(file, bytes);
    await rejectsWith(file, pattern);
  }
});

test('a corrupt zstd file read whole does not spoil the zstd files read after it', async () => {
  const dir = scratchDir();
  const data = Buffer.from('{"text":"a"}\n'.repeat(2000));
  const corrupt = await zstdLargeWindow(data); // no content size in the frame: decoded as a stream
  for (let i = corrupt.length >> 1; i < (corrupt.length >> 1) + 16; i++) corrupt[i]! ^= 0x5a;
  writeFileSync(join(dir, 'corrupt.jsonl.zst'), corrupt);
  writeFileSync(join(dir, 'good.jsonl.zst'), await zstdLargeWindow(data));
  assert.throws(() => readDecompressedSync(join(dir, 'corrupt.jsonl.zst')), /corrupt\.jsonl\.zst: corrupt zstd data/);
  assert.ok(readDecompressedSync(join(dir, 'good.jsonl.zst')).equals(data));
});

test('plain JSON lines pass through unchanged', async () => {
  const file = join(scratchDir(), 'plain.jsonl');
  writeFileSync(file, '{"text":"a"}\n');
  assert.equal((await readAll(file)).toString(), '{"text":"a"}\n');
  assert.equal(readDecompressedSync(file).toString(), '{"text":"a"}\n');
});
