import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';

import { decode as gpt2Decode, encode as gpt2Encode } from 'gpt-tokenizer/encoding/gpt2';

import { c4SampleRecords, slimPajamaRecords, writeSlimPajamaFixture, zstdLargeWindow } from '../../../datasets/fixtures.js';
import { readManifest } from '../../../kernel/src/data/manifest.js';
import { prepare } from '../../../kernel/src/corpus/prepare.js';
import { readShard } from '../../../kernel/src/data/shards.js';
import { MambalabError } from '../../../kernel/src/errors.js';
import { C4_SAMPLE, scratchDir } from '../../helpers.js';
import { NEOX_TOKENIZER, c4SampleTexts } from './helpers.js';

const { Tokenizer: HfTokenizer } = createRequire(import.meta.url)('tokenizers') as {
  Tokenizer: { fromFile(path: string): { encodeBatch(texts: string[]): Promise<{ getIds(): number[] }[]> } };
};

function shardTokens(dir: string): { tokens: Uint16Array; offsets: number[] } {
  const manifest = readManifest(dir);
  const parts = manifest.shards.map((s) => readShard(join(dir, s.file)));
  const tokens = new Uint16Array(parts.reduce((n, p) => n + p.tokens.length, 0));
  const offsets = [0];
  let at = 0;
  for (const p of parts) {
    tokens.set(p.tokens, at);
    for (let i = 1; i < p.offsets.length; i++) offsets.push(at + p.offsets[i]!);
    at += p.tokens.length;
  }
  return { tokens, offsets };
}

test('prepare gpt2: the real C4 sample gives 1000 documents and exactly the tokens gpt-tokenizer counts, decodable back', async () => {
  const out = join(scratchDir(), 'c4-gpt2');
  const manifest = await prepare({ inputs: [C4_SAMPLE], out, tokenizer: 'gpt2', workers: 2 });
  const texts = c4SampleTexts();
  const expected = texts.reduce((n, t) => n + gpt2Encode(t).length + 1, 0); // + end-of-text per document
  assert.equal(manifest.documents, 1000);
  assert.equal(manifest.tokens, expected);
  assert.equal(manifest.textBytes, texts.reduce((n, t) => n + Buffer.byteLength(t), 0));
  assert.equal(manifest.source, 'C4 (allenai/c4)');
  assert.deepEqual(manifest.skipped, { count: 0, examples: [] });
  assert.equal(manifest.inputs[0]!.sha256, createHash('sha256').update(readFileSync(C4_SAMPLE)).digest('hex'));

  const { tokens, offsets } = shardTokens(out);
  assert.equal(offsets.length, 1001);
  for (const d of [0, 1, 499, 998, 999]) {
    const doc = tokens.subarray(offsets[d], offsets[d + 1]);
    assert.equal(doc[doc.length - 1], 50256, `document ${d} ends in end-of-text`);
    assert.equal(gpt2Decode([...doc.subarray(0, -1)]), texts[d]);
  }
  const meta = readShard(join(out, 'shard-00000.arrow')).metadata;
  assert.equal(meta.get('tokenizer'), 'gpt2');
  assert.equal(meta.get('vocab_size'), '50257');
  assert.match(meta.get('license')!, /ODC-BY/);
  assert.equal(JSON.parse(meta.get('inputs')!)[0].sha256, manifest.inputs[0]!.sha256);
});

test('prepare neox: token count equals Hugging Face tokenizers on the same texts, end-of-text is id 0', async () => {
  const out = join(scratchDir(), 'c4-neox');
  const manifest = await prepare({ inputs: [C4_SAMPLE], out, tokenizer: 'neox', tokenizerFile: NEOX_TOKENIZER, workers: 2 });
  const encodings = await HfTokenizer.fromFile(NEOX_TOKENIZER).encodeBatch(c4SampleTexts());
  assert.equal(manifest.tokens, encodings.reduce((n, e) => n + e.getIds().length + 1, 0));
  assert.equal(manifest.vocabSize, 50277);
  const { tokens, offsets } = shardTokens(out);
  assert.deepEqual([...tokens.subarray(offsets[7], offsets[8])], [...encodings[7]!.getIds(), 0]);
});

test('prepare: small shards split at document boundaries and hold the same stream; one or two workers write identical shards', async () => {
  const dir = scratchDir();
  await prepare({ inputs: [C4_SAMPLE], out: join(dir, 'one'), tokenizer: 'gpt2', workers: 1 });
  const manifest = await prepare({ inputs: [C4_SAMPLE], out: join(dir, 'many'), tokenizer: 'gpt2', workers: 2, shardTokens: 100_000 });
  assert.equal(manifest.shards.length, 5);
  assert.equal(manifest.shards.reduce((n, s) => n + s.documents, 0), 1000);
  for (const s of manifest.shards.slice(0, -1)) assert.ok(s.tokens >= 100_000 && s.tokens < 100_000 + 20_000, `shard of ${s.tokens} tokens`);
  const one = shardTokens(join(dir, 'one'));
  const many = shardTokens(join(dir, 'many'));
  assert.ok(Buffer.from(one.tokens.buffer, one.tokens.byteOffset, one.tokens.byteLength).equals(Buffer.from(many.tokens.buffer, many.tokens.byteOffset, many.tokens.byteLength)));
  assert.deepEqual(one.offsets, many.offsets);
  const again = join(dir, 'again');
  await prepare({ inputs: [C4_SAMPLE], out: again, tokenizer: 'gpt2', workers: 2 });
  assert.ok(readFileSync(join(again, 'shard-00000.arrow')).equals(readFileSync(join(dir, 'one', 'shard-00000.arrow'))));
});

test('prepare slimpajama-format (synthetic fixture, zstd with a large window): --sets keeps those sets, and each document keeps its set', async () => {
  const dir = scratchDir();
  const records = slimPajamaRecords(c4SampleRecords().slice(0, 140));
  mkdirSync(join(dir, 'chunk1'));
  await writeSlimPajamaFixture(join(dir, 'chunk1', 'example_train_0.jsonl.zst'), records.slice(0, 70));
  await writeSlimPajamaFixture(join(dir, 'chunk1', 'example_train_1.jsonl.zst'), records.slice(70));
  const sets = ['RedPajamaC4', 'RedPajamaWikipedia'];
  const out = join(dir, 'prepared');
  const manifest = await prepare({ inputs: [dir], out, tokenizer: 'gpt2', sets, source: 'synthetic SlimPajama-format fixture (C4 text)' });
  const kept = records.filter((r) => sets.includes(r.set));
  assert.equal(manifest.documents, kept.length);
  assert.equal(manifest.filtered, records.length - kept.length);
  assert.equal(manifest.tokens, kept.reduce((n, r) => n + gpt2Encode(r.text).length + 1, 0));
  assert.equal(manifest.inputs.length, 2);
  assert.deepEqual(Object.keys(manifest.sets!).sort(), sets);
  assert.equal(manifest.sets!.RedPajamaC4!.documents, kept.filter((r) => r.set === 'RedPajamaC4').length);
  assert.equal(manifest.source, 'synthetic SlimPajama-format fixture (C4 text)');
  const shard = readShard(join(out, 'shard-00000.arrow'), { sets: true });
  assert.deepEqual(shard.sets, kept.map((r) => r.set));

  const none = prepare({ inputs: [dir], out: join(dir, 'none'), tokenizer: 'gpt2', sets: ['redpajama_c4'] });
  await assert.rejects(none, /no documents in 2 input files \(\/.*\.zst, \/.*\.zst\) \(the --sets filter left out all 140/);
});

test('prepare without SlimPajama names recognizes SlimPajama file names for provenance', async () => {
  const dir = scratchDir();
  await writeSlimPajamaFixture(join(dir, 'example_train_0.jsonl.zst'), slimPajamaRecords(c4SampleRecords().slice(0, 3)));
  const manifest = await prepare({ inputs: [dir], out: join(dir, 'p'), tokenizer: 'gpt2', workers: 1 });
  assert.match(manifest.source, /SlimPajama-627B/);
  assert.match(manifest.license, /CC BY-SA/);
});

test('prepare: a bad record stops the run naming file and line, or with skip is counted and reported; --out keeps what it had', async () => {
  const dir = scratchDir();
  const good = c4SampleRecords().slice(0, 5).map((r) => JSON.stringify({ text: r.text }));
  const lines = [good[0], good[1], '{"text": "unterminated', good[2], '{"url":"no text"}', good[3], good[4]];
  const bytes = Buffer.concat([Buffer.from(lines.join('\n') + '\n'), Buffer.from('{"text":"caf'), Buffer.from([0xff]), Buffer.from('"}\n')]);
  const file = join(dir, 'bad.jsonl.gz');
  writeFileSync(file, gzipSync(bytes));

  // A dataset already in --out must survive a failed prepare untouched.
  const out = join(dir, 'out');
  await prepare({ inputs: [C4_SAMPLE], out, tokenizer: 'gpt2', workers: 1 });
  const before = readFileSync(join(out, 'shard-00000.arrow'));
  await assert.rejects(
    prepare({ inputs: [file], out, tokenizer: 'gpt2', workers: 1 }),
    (e: unknown) => e instanceof MambalabError && e.message.startsWith(`${file}:3: line 3 is not valid JSON`) && /on-bad-record skip/.test(e.message),
  );
  assert.ok(readFileSync(join(out, 'shard-00000.arrow')).equals(before));
  assert.equal(readManifest(out).documents, 1000);
  assert.deepEqual(readdirSync(dir).sort(), ['bad.jsonl.gz', 'out'], 'no staging folder left behind');

  const manifest = await prepare({ inputs: [file], out, tokenizer: 'gpt2', workers: 1, onBadRecord: 'skip' });
  assert.equal(manifest.documents, 5);
  assert.equal(manifest.skipped.count, 3);
  assert.deepEqual(
    manifest.skipped.examples.map((e) => e.slice(file.length).split(':')[1]),
    ['3', '5', '8'],
  );
  assert.match(manifest.skipped.examples[2]!, /not valid UTF-8 \(byte 0xff/);
  assert.equal(manifest.inputs[0]!.lines, 8);
});

test('prepare: a truncated gzip or zstd input fails naming the file, and nothing is written', async () => {
  const dir = scratchDir();
  const gz = readFileSync(C4_SAMPLE);
  const zst = await zstdLargeWindow(Buffer.from(c4SampleTexts().slice(0, 50).map((text) => JSON.stringify({ text }) + '\n').join('')));
  for (const [name, whole] of [['c4-train.00000-of-01024.json.gz', gz], ['example_train_0.jsonl.zst', zst]] as const) {
    const truncated = join(dir, name);
    writeFileSync(truncated, whole.subarray(0, whole.length - 1000));
    const out = join(dir, `out-${name}`);
    await assert.rejects(prepare({ inputs: [truncated], out, tokenizer: 'gpt2', workers: 1 }), (e: unknown) => e instanceof MambalabError && e.message.includes(truncated) && /truncated/.test(e.message));
    assert.equal(existsSync(out), false);
  }
});

test('prepare refuses an --out folder that holds something other than a prepared dataset', async () => {
  const dir = scratchDir();
  const out = join(dir, 'notes');
  mkdirSync(out);
  copyFileSync(C4_SAMPLE, join(out, 'keep-me.json.gz'));
  await assert.rejects(prepare({ inputs: [C4_SAMPLE], out, tokenizer: 'gpt2' }), /exists and is not a prepared dataset/);
  assert.ok(existsSync(join(out, 'keep-me.json.gz')));
  await assert.rejects(prepare({ inputs: [join(dir, 'missing.jsonl')], out: join(dir, 'x'), tokenizer: 'gpt2' }), /input .*missing.jsonl does not exist/);
});
