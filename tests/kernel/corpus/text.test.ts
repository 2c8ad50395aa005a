import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { test } from 'node:test';

import { decode, encode } from 'gpt-tokenizer/encoding/gpt2';

import { GPT2_END_OF_TEXT, loadTextCorpus, readTexts, textFiles } from '../../../kernel/src/corpus/text.js';
import { C4_SAMPLE, scratchDir } from '../../helpers.js';

test('the C4 sample holds 1000 documents, tokenized exactly as GPT-2 does', () => {
  const texts = readTexts(C4_SAMPLE);
  assert.equal(texts.length, 1000);
  const corpus = loadTextCorpus(C4_SAMPLE);
  const train = corpus.stats('train');
  const validation = corpus.stats('validation');
  assert.equal(train.documents + validation.documents, 1000);
  assert.equal(validation.documents, 50, 'every 20th document is held out');
  const expectedTokens = texts.reduce((n, t) => n + encode(t).length + 1, 0);
  assert.equal(train.tokens + validation.tokens, expectedTokens);
});

test('sampled windows decode back to C4 text, joined by <|endoftext|>', () => {
  const corpus = loadTextCorpus(C4_SAMPLE);
  const batch = corpus.sampler('train', { batchSize: 2, seqLen: 4000, seed: 1 }).next();
  const row = Array.from(batch.tokens.subarray(0, 4001));
  assert.ok(row.includes(GPT2_END_OF_TEXT), 'a long window crosses a document boundary');
  const first = decode(row.slice(0, row.indexOf(GPT2_END_OF_TEXT)));
  const texts = readTexts(C4_SAMPLE);
  assert.ok(texts.some((t) => t.endsWith(first)), 'the text before the boundary ends a real document');
});

test('samplers are seeded and resumable', () => {
  const corpus = loadTextCorpus(C4_SAMPLE);
  const a = corpus.sampler('train', { batchSize: 3, seqLen: 16, seed: 42 });
  const b = corpus.sampler('train', { batchSize: 3, seqLen: 16, seed: 42 });
  a.next();
  assert.deepEqual(a.next(), (b.next(), b.next()));
  const state = a.state();
  assert.equal(state.batches, 2);
  const resumed = corpus.sampler('train', { batchSize: 3, seqLen: 16, seed: 42, resume: state });
  assert.deepEqual(resumed.next(), a.next());
  assert.notDeepEqual(corpus.sampler('train', { batchSize: 3, seqLen: 16, seed: 43 }).next(), b.next());
});

test('bad data files are clear errors naming the file and line', () => {
  const dir = scratchDir();
  const write = (name: string, content: string | Buffer) => {
    const path = join(dir, name);
    writeFileSync(path, content);
    return path;
  };
  assert.throws(() => readTexts(write('empty.json.gz', '')), /empty\.json\.gz is empty/);
  assert.throws(() => readTexts(write('corrupt.json.gz', Buffer.from([0x1f, 0x8b, 8, 0, 1, 2, 3]))), /corrupt\.json\.gz is not valid gzip/);
  assert.throws(() => readTexts(write('bad.jsonl', '{"text":"ok"}\n{"text": oops}\n')), /bad\.jsonl line 2 is not valid JSON/);
  assert.throws(() => readTexts(write('notext.jsonl', '{"body":"x"}\n')), /notext\.jsonl line 1 has no "text" string field/);
  assert.throws(() => readTexts(write('blank.jsonl', '\n\n')), /blank\.jsonl holds no documents/);
  assert.throws(() => textFiles(join(dir, 'missing')), /does not exist/);
  assert.throws(() => textFiles(scratchDir()), /holds no \.json, \.jsonl or \.json\.gz files/);
  const ok = write('one.json.gz', gzipSync('{"text":"Hello world."}\n'));
  assert.deepEqual(readTexts(ok), ['Hello world.']);
  assert.throws(() => loadTextCorpus(ok).sampler('train', { batchSize: 1, seqLen: 64, seed: 0 }), /the train split has 4 tokens, fewer than one window/);
});
