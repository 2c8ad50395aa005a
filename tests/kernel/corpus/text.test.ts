import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';

import { decode, encode } from 'gpt-tokenizer/encoding/gpt2';

import { c4Lines, c4SampleRecords, zstdLargeWindow } from '../../../datasets/fixtures.js';
import { prepare } from '../../../kernel/src/corpus/prepare.js';
import { loadTextCorpus } from '../../../kernel/src/corpus/text.js';
import { loadTokenizer } from '../../../kernel/src/corpus/tokenizer.js';
import { MambalabError } from '../../../kernel/src/errors.js';
import { C4_SAMPLE, scratchDir } from '../../helpers.js';
import { c4SampleTexts } from './helpers.js';

const END_OF_TEXT = loadTokenizer('gpt2').endOfText;

test('the C4 sample holds 1000 documents, tokenized exactly as GPT-2 does', () => {
  const corpus = loadTextCorpus(C4_SAMPLE);
  const train = corpus.stats('train');
  const validation = corpus.stats('validation');
  assert.equal(train.documents + validation.documents, 1000);
  assert.equal(validation.documents, 50, 'every 20th document is held out');
  const expectedTokens = c4SampleTexts().reduce((n, t) => n + encode(t).length + 1, 0);
  assert.equal(train.tokens + validation.tokens, expectedTokens);
});

test('sampled windows decode back to C4 text, joined by <|endoftext|>', () => {
  const corpus = loadTextCorpus(C4_SAMPLE);
  const batch = corpus.sampler('train', { batchSize: 2, seqLen: 4000, seed: 1 }).next();
  const row = Array.from(batch.tokens.subarray(0, 4001));
  assert.ok(row.includes(END_OF_TEXT), 'a long window crosses a document boundary');
  const first = decode(row.slice(0, row.indexOf(END_OF_TEXT)));
  assert.ok(c4SampleTexts().some((t) => t.endsWith(first)), 'the text before the boundary ends a real document');
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

/** prepare's outcome for one input: its token and document counts, or its error message. */
async function prepared(input: string): Promise<{ tokens: number; documents: number } | string> {
  try {
    const manifest = await prepare({ inputs: [input], out: join(scratchDir(), 'out'), tokenizer: 'gpt2', workers: 1 });
    return { tokens: manifest.tokens, documents: manifest.documents };
  } catch (e) {
    assert.ok(e instanceof MambalabError, `prepare ${input}: ${(e as Error).stack}`);
    return e.message;
  }
}

function loaded(input: string): { tokens: number; documents: number } | string {
  try {
    const corpus = loadTextCorpus(input);
    const [train, validation] = [corpus.stats('train'), corpus.stats('validation')];
    return { tokens: train.tokens + validation.tokens, documents: train.documents + validation.documents };
  } catch (e) {
    assert.ok(e instanceof MambalabError, `loadTextCorpus ${input}: ${(e as Error).stack}`);
    return e.message;
  }
}

test('train --data and data prepare accept the same inputs: a byte-order mark, zstd, folders searched alike', async () => {
  const dir = scratchDir();
  const lines = c4Lines(c4SampleRecords().slice(0, 30));
  const write = (name: string, content: string | Buffer) => {
    const path = join(dir, name);
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(path, content);
    return path;
  };
  const inputs = [
    write('bom.jsonl', '\ufeff' + lines),
    write('nested/c4.jsonl.zst', await zstdLargeWindow(Buffer.from(lines))),
    write('c4.json.gz', gzipSync(lines)),
  ];
  write('notes.json', '{"not":"a corpus"}'); // a bare .json in a folder is not an input
  for (const input of [...inputs, dir]) {
    const expected = await prepared(input);
    assert.equal(typeof expected, 'object', `prepare ${input}: ${JSON.stringify(expected)}`);
    assert.deepEqual(loaded(input), expected, input);
  }
  assert.deepEqual(loaded(dir), { tokens: 3 * (loaded(inputs[2]!) as { tokens: number }).tokens, documents: 90 });
});

test('train --data and data prepare reject the same bad inputs with the same message', async () => {
  const dir = scratchDir();
  const write = (name: string, content: string | Buffer) => {
    const path = join(dir, name);
    writeFileSync(path, content);
    return path;
  };
  const gz = gzipSync(c4Lines(c4SampleRecords().slice(0, 50)));
  const corrupt = Buffer.from(gz);
  for (let i = corrupt.length >> 1; i < (corrupt.length >> 1) + 64; i++) corrupt[i]! ^= 0x5a;
  const emptyFolder = join(dir, 'empty-folder');
  mkdirSync(emptyFolder);
  const cases: [string, RegExp][] = [
    [write('plain.json.gz', '{"text":"not gzip"}\n'), /plain\.json\.gz: the name says gzip but the data is not compressed/],
    [write('empty.json.gz', ''), /empty\.json\.gz: the name says gzip but the file is empty/],
    [write('truncated.json.gz', gz.subarray(0, gz.length >> 1)), /truncated\.json\.gz: the gzip data ends early: the file is truncated; fetch it again/],
    [write('corrupt.json.gz', corrupt), /corrupt\.json\.gz: (corrupt gzip data|the gzip data ends early)/],
    [write('bad.jsonl', '{"text":"ok"}\n{"text": oops}\n'), /bad\.jsonl:2: line 2 is not valid JSON/],
    [write('notext.jsonl', '{"body":"x"}\n'), /notext\.jsonl:1: line 1 has no "text" string field/],
    [write('latin1.jsonl', Buffer.from('{"text":"caf\xe9"}\n', 'latin1')), /latin1\.jsonl:1: line 1 is not valid UTF-8/],
    [write('blank.jsonl', '\n\n'), /^no documents in \/.*\/blank\.jsonl$/],
    [join(dir, 'missing.jsonl'), /^input .*missing\.jsonl does not exist$/],
    [emptyFolder, /empty-folder holds no \.jsonl, \.json\.gz, \.jsonl\.gz or \.jsonl\.zst files/],
  ];
  for (const [input, message] of cases) {
    const fromLoad = loaded(input);
    assert.match(String(fromLoad), message, input);
    assert.equal(await prepared(input), fromLoad, input);
  }
});

test('a corpus shorter than one window is a clear error at sampling time', () => {
  const ok = join(scratchDir(), 'one.json.gz');
  writeFileSync(ok, gzipSync('{"text":"Hello world."}\n'));
  assert.throws(() => loadTextCorpus(ok).sampler('train', { batchSize: 1, seqLen: 64, seed: 0 }), /the train split has 4 tokens, fewer than one window/);
});
