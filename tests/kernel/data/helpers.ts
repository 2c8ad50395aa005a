// Shared by the data tests: the C4 sample's texts, random text for fuzzing, small datasets.
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';

import { writeManifest } from '../../../kernel/src/data/manifest.js';
import { SeededRandom } from '../../../kernel/src/data/random.js';
import { writeShard } from '../../../kernel/src/data/shards.js';
import { C4_SAMPLE, repoRoot } from '../../helpers.js';

/** GPT-NeoX-20B's tokenizer.json (../shared/datasets/SOURCES.md). */
export const NEOX_TOKENIZER = join(repoRoot, '..', 'shared', 'datasets', 'tokenizers', 'gpt-neox-20b', 'tokenizer.json');

let texts: string[] | undefined;
export function c4SampleTexts(): string[] {
  texts ??= gunzipSync(readFileSync(C4_SAMPLE))
    .toString('utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => (JSON.parse(l) as { text: string }).text);
  return texts;
}

/** A seeded uniform [0, 1) generator for fuzz tests (the project's SeededRandom). */
export function random(seed: number): () => number {
  const generator = new SeededRandom(seed);
  return () => generator.next();
}

/** Random strings drawn from pieces that exercise every branch of GPT-2's split pattern. */
export function randomText(rand: () => number, pieces: number): string {
  const alphabet = [
    'a', 'Z', 'é', 'ß', 'ж', '中', '𝐀', '😀', '7', '٣', 'Ⅻ', ' ', '  ', '   ', '\t', '\n', '\r\n', '\u00a0', '\u3000', '\u2028',
    '\u0085', '\ufeff', "'", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", '.', ',', '!', '-', '$', '"', '\u0301', 'e\u0301',
    '<|endoftext|>', 'the', ' the', 'hello', 'Bücher', '12345', '\u200b',
  ];
  let s = '';
  for (let i = 0; i < pieces; i++) s += alphabet[Math.floor(rand() * alphabet.length)];
  return s;
}

/**
 * A prepared dataset written directly (no tokenizer): document lengths as given, token k of the
 * whole stream = k mod 50000 (so a window tells where it was cut), `perShard` documents a shard.
 */
export function writeCountingDataset(dir: string, lengths: number[], perShard: number): Uint16Array {
  mkdirSync(dir, { recursive: true });
  const total = lengths.reduce((a, b) => a + b, 0);
  const stream = new Uint16Array(total);
  for (let k = 0; k < total; k++) stream[k] = k % 50000;
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
    vocabSize: 50257,
    endOfText: 50256,
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
