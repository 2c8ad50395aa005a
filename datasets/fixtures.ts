#!/usr/bin/env -S node --import tsx
// Format fixtures for tests, built from the real C4 sample (datasets/c4): byte-for-byte the
// layouts of the real corpora, with SYNTHETIC packaging. Nothing here is real SlimPajama text.
//   - C4 layout: gzip JSON lines {"text","timestamp","url"} in C4's own key order.
//   - SlimPajama layout: zstd (streamed, 1 GiB window, long-distance matching, as the real
//     files need a large decoder window) JSON lines {"text","meta":{"redpajama_set_name"}}; the
//     set names are assigned round-robin so that --sets filtering has something to filter.
// Usage: npx tsx datasets/fixtures.ts <out dir>   (writes both, prints what it wrote)
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';

import { CompressStream } from 'zstd-napi';

import { C4_SAMPLE_FILE } from '../kernel/src/corpus/paths.js';

export const REDPAJAMA_SETS = [
  'RedPajamaCommonCrawl',
  'RedPajamaC4',
  'RedPajamaGithub',
  'RedPajamaBook',
  'RedPajamaArXiv',
  'RedPajamaWikipedia',
  'RedPajamaStackExchange',
];

interface C4Record {
  text: string;
  url: string;
  date: string;
}

/** The real C4 sample's records (OLMo's copy: {"text","url","date"}). */
export function c4SampleRecords(): C4Record[] {
  return gunzipSync(readFileSync(C4_SAMPLE_FILE))
    .toString('utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as C4Record);
}

/** C4's serialization of records: {"text","timestamp","url"}, compact, '\n' after each line. */
export function c4Lines(records: C4Record[]): string {
  return records.map((r) => JSON.stringify({ text: r.text, timestamp: r.date, url: r.url }) + '\n').join('');
}

export function writeC4Fixture(file: string, records: C4Record[]): void {
  writeFileSync(file, gzipSync(c4Lines(records)));
}

export interface SlimPajamaRecord {
  text: string;
  set: string;
}

export function slimPajamaRecords(records: C4Record[]): SlimPajamaRecord[] {
  return records.map((r, i) => ({ text: r.text, set: REDPAJAMA_SETS[i % REDPAJAMA_SETS.length]! }));
}

export async function writeSlimPajamaFixture(file: string, records: SlimPajamaRecord[]): Promise<void> {
  const lines = records.map((r) => JSON.stringify({ text: r.text, meta: { redpajama_set_name: r.set } }) + '\n').join('');
  writeFileSync(file, await zstdLargeWindow(Buffer.from(lines)));
}

/** Streamed zstd: without a known size the frame asks for the whole 2^30 window. */
export async function zstdLargeWindow(data: Buffer): Promise<Buffer> {
  const stream = new CompressStream({ compressionLevel: 3, windowLog: 30, enableLongDistanceMatching: true });
  const out: Buffer[] = [];
  stream.on('data', (c: Buffer) => out.push(c));
  const done = new Promise((resolve, reject) => stream.on('end', resolve).on('error', reject));
  for (let i = 0; i < data.length; i += 1 << 16) stream.write(data.subarray(i, i + (1 << 16)));
  stream.end();
  await done;
  return Buffer.concat(out);
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  const out = process.argv[2];
  if (!out) {
    console.error('usage: npx tsx datasets/fixtures.ts <out dir>');
    process.exit(2);
  }
  const records = c4SampleRecords();
  mkdirSync(join(out, 'c4', 'en'), { recursive: true });
  mkdirSync(join(out, 'synthetic-slimpajama-format', 'train', 'chunk1'), { recursive: true });
  writeC4Fixture(join(out, 'c4', 'en', 'c4-validation.00000-of-00008.json.gz'), records);
  await writeSlimPajamaFixture(join(out, 'synthetic-slimpajama-format', 'train', 'chunk1', 'example_train_0.jsonl.zst'), slimPajamaRecords(records));
  console.log(`wrote ${records.length} C4 documents in C4's and (synthetic) SlimPajama's layouts under ${out}`);
}
