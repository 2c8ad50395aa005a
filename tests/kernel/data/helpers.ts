// Shared by the data tests: a seeded generator (the corpus tests fuzz with it too), small datasets.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

import { Field, List, makeData, RecordBatch, Schema, Struct, Table, tableToIPC, Uint16, type Data } from 'apache-arrow';

import { writeManifest } from '../../../kernel/src/data/manifest.js';
import { SeededRandom } from '../../../kernel/src/data/random.js';
import { writeShard } from '../../../kernel/src/data/shards.js';

/** A seeded uniform [0, 1) generator for fuzz tests (the project's SeededRandom). */
export function random(seed: number): () => number {
  const generator = new SeededRandom(seed);
  return () => generator.next();
}

/**
 * A prepared dataset written directly (no tokenizer): document lengths as given, token k of the
 * whole stream = k mod 50000 (so a window tells where it was cut; mod vocabSize when smaller),
 * `perShard` documents a shard.
 */
export function writeCountingDataset(dir: string, lengths: number[], perShard: number, vocabSize = 50257): Uint16Array {
  mkdirSync(dir, { recursive: true });
  const total = lengths.reduce((a, b) => a + b, 0);
  const stream = new Uint16Array(total);
  for (let k = 0; k < total; k++) stream[k] = k % Math.min(50000, vocabSize);
  const shards: { file: string; documents: number; tokens: number }[] = [];
  let doc = 0;
  let at = 0;
  while (doc < lengths.length) {
    const docs = lengths.slice(doc, doc + perShard);
    const offsets = new Int32Array(docs.length + 1);
    docs.forEach((n, i) => (offsets[i + 1] = offsets[i]! + n));
    const file = `shard-${String(shards.length).padStart(5, '0')}.arrow`;
    writeShard(join(dir, file), { tokens: stream.subarray(at, at + offsets[docs.length]!), offsets }, { tokenizer: 'gpt2' });
    shards.push({ file, documents: docs.length, tokens: offsets[docs.length]! });
    at += offsets[docs.length]!;
    doc += docs.length;
  }
  writeManifest(dir, {
    source: 'counting test data',
    license: 'none',
    tokenizer: 'gpt2',
    vocabSize,
    endOfText: vocabSize - 1,
    documents: lengths.length,
    tokens: total,
    textBytes: 0,
    shards,
    inputs: [],
    skipped: { count: 0, examples: [] },
    blankLines: 0,
    filtered: 0,
    created: new Date(0).toISOString(),
  });
  return stream;
}

/** The type of a shard's tokens column. */
export const TOKENS = new List(new Field('item', new Uint16(), false));

/** An Arrow IPC file of these columns (any types, any offsets: shards that are wrong too), the batch repeated `batches` times. */
export function arrowFile(columns: Record<string, Data>, batches = 1): Buffer {
  const fields = Object.entries(columns).map(([name, data]) => new Field(name, data.type, true));
  const length = Object.values(columns)[0]?.length ?? 0;
  const batch = new RecordBatch(new Schema(fields), makeData({ type: new Struct(fields), length, nullCount: 0, children: Object.values(columns) }));
  return Buffer.from(tableToIPC(new Table(Array.from({ length: batches }, () => batch)), 'file'));
}
