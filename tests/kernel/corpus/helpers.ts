// Shared by the corpus tests: the C4 sample's texts, NeoX's tokenizer.json, random text for fuzzing.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';

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
