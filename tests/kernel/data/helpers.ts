// Shared by the data tests: the real C4 sample, a random text generator, temp folders.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { gunzipSync } from 'node:zlib';

import { sharedDatasetsDir } from '../../../kernel/src/data/paths.js';

/** The 1000 real C4 documents of the offline sample (shared/datasets, see its SOURCES.md). */
export function c4SamplePath(): string {
  const dir = sharedDatasetsDir();
  assert.ok(dir, 'shared/datasets is missing: the data tests need the real C4 sample beside the checkout (../shared/datasets)');
  return join(dir, 'c4', 'olmo', 'c4-sample.00000-of-00001.json.gz');
}

export function neoxTokenizerPath(): string {
  return join(sharedDatasetsDir()!, 'tokenizers', 'gpt-neox-20b', 'tokenizer.json');
}

let texts: string[] | undefined;
export function c4SampleTexts(): string[] {
  texts ??= gunzipSync(readFileSync(c4SamplePath()))
    .toString('utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => (JSON.parse(l) as { text: string }).text);
  return texts;
}

/** A seeded generator for fuzz tests (mulberry32). */
export function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
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

/** A fresh temporary folder, removed when the test file ends. */
export function tempDir(prefix = 'mambalab-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
