import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Pretokenizer, type Whitespace } from '../../../kernel/src/corpus/pretokenize.js';
import { random } from '../data/helpers.js';
import { c4SampleTexts, randomText } from './helpers.js';

// GPT-2's pattern as a regex, with \s spelled out for each engine.
const JS_SPACE = String.raw`\s`;
const ONIG_SPACE = String.raw`[\t-\r\u0085\p{Zs}\u2028\u2029]`;
function reference(whitespace: Whitespace): RegExp {
  const s = whitespace === 'javascript' ? JS_SPACE : ONIG_SPACE;
  const notS = whitespace === 'javascript' ? String.raw`\S` : String.raw`[^\t-\r\u0085\p{Zs}\u2028\u2029]`;
  const other = whitespace === 'javascript' ? String.raw`[^\s\p{L}\p{N}]` : String.raw`[^\t-\r\u0085\p{Zs}\u2028\u2029\p{L}\p{N}]`;
  return new RegExp(String.raw`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?${other}+|${s}+(?!${notS})|${s}+`, 'gu');
}

/** Fails at the first word where the two splits differ (deepEqual is too slow for 400k words). */
function assertSameWords(actual: string[], expected: string[], text: string): void {
  const n = Math.max(actual.length, expected.length);
  for (let i = 0; i < n; i++) {
    if (actual[i] !== expected[i]) {
      assert.fail(`word ${i} of ${JSON.stringify(text.slice(0, 200))}: got ${JSON.stringify(actual[i])}, the regex gives ${JSON.stringify(expected[i])}`);
    }
  }
}

function split(p: Pretokenizer, text: string): string[] {
  const words: string[] = [];
  for (let i = 0; i < text.length; ) {
    const j = p.next(text, i, text.length);
    if (j <= i) assert.fail(`no progress at ${i} in ${JSON.stringify(text)}`);
    words.push(text.slice(i, j));
    i = j;
  }
  return words;
}

for (const whitespace of ['javascript', 'oniguruma'] as const) {
  test(`pretokenizer (${whitespace} \\s) splits random text exactly as the regex does`, () => {
    const p = new Pretokenizer(whitespace);
    const re = reference(whitespace);
    const rand = random(whitespace.length);
    for (let n = 0; n < 3000; n++) {
      const text = randomText(rand, 1 + Math.floor(rand() * 30));
      assertSameWords(split(p, text), text.match(re) ?? [], text);
    }
  });
}

test('pretokenizer splits the real C4 sample exactly as the regex does', () => {
  const p = new Pretokenizer('javascript');
  const re = reference('javascript');
  let words = 0;
  for (const text of c4SampleTexts()) {
    const expected = text.match(re) ?? [];
    assertSameWords(split(p, text), expected, text);
    words += expected.length;
  }
  assert.ok(words > 400_000, `expected the sample to hold over 400k words, got ${words}`);
});

test('pretokenizer keeps to the segment it is given: (?!\\S) sees the segment end', () => {
  const p = new Pretokenizer('javascript');
  // In the whole string the run "  " before "b" gives " " then " b"; cut at the end of the run, all of it is one word.
  assert.equal(p.next('a  b', 1, 3), 3);
  assert.equal(p.next('a  b', 1, 4), 2);
});
