import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';

import { encode as gpt2Reference } from 'gpt-tokenizer/encoding/gpt2';

import { gpt2TokenizerJson, loadTokenizer } from '../../../kernel/src/corpus/tokenizer.js';
import { MambalabError } from '../../../kernel/src/errors.js';
import { random } from '../data/helpers.js';
import { NEOX_TOKENIZER, c4SampleTexts, randomText } from './helpers.js';

// Hugging Face's Rust tokenizer (napi), the reference for GPT-NeoX.
const { Tokenizer: HfTokenizer } = createRequire(import.meta.url)('tokenizers') as {
  Tokenizer: Record<'fromFile' | 'fromString', (arg: string) => { encodeBatch(texts: string[]): Promise<{ getIds(): number[] }[]> }>;
};

function firstDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) if (a[i] !== b[i]) return i;
  return -1;
}

function assertSameIds(actual: Uint16Array, expected: number[], text: string): void {
  const at = firstDifference(actual, expected);
  if (at >= 0) {
    assert.fail(`ids differ at ${at} for ${JSON.stringify(text.slice(0, 120))}: got ${actual.slice(at, at + 5).join(',')}, expected ${expected.slice(at, at + 5).join(',')}`);
  }
}

test('gpt2: every C4 sample document encodes to the ids gpt-tokenizer gives, and decodes back', () => {
  const tokenizer = loadTokenizer('gpt2');
  assert.equal(tokenizer.vocabSize, 50257);
  assert.equal(tokenizer.endOfText, 50256);
  let total = 0;
  for (const text of c4SampleTexts()) {
    const ids = tokenizer.encode(text);
    assertSameIds(ids, gpt2Reference(text), text);
    assert.equal(tokenizer.decode(ids), text);
    total += ids.length;
  }
  assert.ok(total > 450_000 && total < 500_000, `gpt2 tokens in the sample: ${total}`);
});

test('gpt2 as a tokenizer.json: Hugging Face tokenizers running our recovered merges agrees with gpt-tokenizer on C4', async () => {
  const texts = c4SampleTexts();
  const encodings = await HfTokenizer.fromString(gpt2TokenizerJson()).encodeBatch(texts);
  texts.forEach((text, i) => assertSameIds(Uint16Array.from(encodings[i]!.getIds()), gpt2Reference(text), text));
});

test('gpt2: random unicode text encodes as gpt-tokenizer does', () => {
  const tokenizer = loadTokenizer('gpt2');
  const rand = random(2);
  for (let n = 0; n < 2000; n++) {
    const text = randomText(rand, 1 + Math.floor(rand() * 40));
    // gpt-tokenizer refuses special-token text by default; as plain text it must match ours.
    assertSameIds(tokenizer.encode(text), gpt2Reference(text, { disallowedSpecial: new Set() }), text);
  }
});

test('gpt2: "<|endoftext|>" inside a document is text, not a document boundary', () => {
  const tokenizer = loadTokenizer('gpt2');
  const ids = tokenizer.encode('a <|endoftext|> b');
  assert.ok(!ids.includes(tokenizer.endOfText), `got ${ids.join(',')}`);
  assert.equal(tokenizer.decode(ids), 'a <|endoftext|> b');
  assert.equal(tokenizer.decode([tokenizer.endOfText]), '<|endoftext|>');
});

test('neox: every C4 sample document encodes to the ids Hugging Face tokenizers gives, and decodes back', async () => {
  const tokenizer = loadTokenizer('neox', { file: NEOX_TOKENIZER });
  assert.equal(tokenizer.vocabSize, 50277);
  assert.equal(tokenizer.endOfText, 0);
  const texts = c4SampleTexts();
  const expected = await HfTokenizer.fromFile(NEOX_TOKENIZER).encodeBatch(texts);
  let total = 0;
  texts.forEach((text, i) => {
    const ids = tokenizer.encode(text);
    assertSameIds(ids, expected[i]!.getIds(), text);
    assert.equal(tokenizer.decode(ids), text.normalize('NFC'));
    total += ids.length;
  });
  assert.ok(total > 450_000 && total < 500_000, `neox tokens in the sample: ${total}`);
});

test('neox: random unicode text (runs of spaces, NFC, U+0085) encodes as Hugging Face tokenizers does', async () => {
  const tokenizer = loadTokenizer('neox', { file: NEOX_TOKENIZER });
  const rand = random(3);
  // Hugging Face matches special tokens inside text; ours treats them as text (tested above).
  const texts = Array.from({ length: 2000 }, () => randomText(rand, 1 + Math.floor(rand() * 40)).replaceAll('<|endoftext|>', '<|x|>'));
  texts.push(' '.repeat(25) + 'x', ' '.repeat(49), 'a' + ' '.repeat(26) + 'b');
  const expected = await HfTokenizer.fromFile(NEOX_TOKENIZER).encodeBatch(texts);
  texts.forEach((text, i) => assertSameIds(tokenizer.encode(text), expected[i]!.getIds(), text));
});

test('neox without a tokenizer.json says where to get one', () => {
  assert.throws(
    () => loadTokenizer('neox', { file: '/nonexistent/tokenizer.json' }),
    (e: unknown) => e instanceof MambalabError && /does not exist/.test(e.message) && /EleutherAI\/gpt-neox-20b/.test(e.message),
  );
  assert.throws(() => loadTokenizer('llama'), /expected one of gpt2, neox, got 'llama'/);
});
