import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { decode as gpt2Decode } from 'gpt-tokenizer/encoding/gpt2';

import { openDataset } from '../../../kernel/src/data/dataset.js';
import { prepare } from '../../../kernel/src/corpus/prepare.js';
import { createModel } from '../../../kernel/src/models/model.js';
import { Trainer } from '../../../kernel/src/train/trainer.js';
import { MambalabError } from '../../../kernel/src/errors.js';
import { C4_SAMPLE, repoRoot, scratchDir } from '../../helpers.js';
import { c4SampleTexts } from '../corpus/helpers.js';
import { writeCountingDataset } from './helpers.js';

test('openDataset: documents split into train and validation by document, ~5% held out, the same every time', () => {
  const dir = join(scratchDir(), 'counting');
  const lengths = Array.from({ length: 2000 }, (_, i) => 5 + (i % 17));
  const stream = writeCountingDataset(dir, lengths, 300);
  const data = openDataset(dir);
  assert.deepEqual(data.info(), { documents: 2000, tokens: stream.length, tokenizer: 'gpt2', shards: 7 });
  const train = data.stats('train');
  const validation = data.stats('validation');
  assert.equal(train.documents + validation.documents, 2000);
  assert.equal(train.tokens + validation.tokens, stream.length);
  assert.ok(validation.documents > 60 && validation.documents < 140, `${validation.documents} validation documents`);
  assert.deepEqual(openDataset(dir).stats('validation'), validation);
  assert.notDeepEqual(openDataset(dir, { validationFraction: 0.2 }).stats('validation'), validation);

  // Every token of a validation window comes from a validation document, and likewise for train.
  const docOf = new Int32Array(stream.length);
  let at = 0;
  lengths.forEach((n, d) => docOf.fill(d, at, (at += n)));
  const splitOf = (token: number) => docOf[token]!; // token k is k (the stream is under 50000 long)
  const docsIn = (split: 'train' | 'validation') => {
    const docs = new Set<number>();
    const sampler = data.sampler(split, { batchSize: 8, seqLen: 15, seed: 1 });
    for (let i = 0; i < 50; i++) for (const t of sampler.next().tokens) docs.add(splitOf(t));
    return docs;
  };
  const trainDocs = docsIn('train');
  const validationDocs = docsIn('validation');
  assert.equal([...trainDocs].filter((d) => validationDocs.has(d)).length, 0, 'no document in both splits');
  assert.ok(validationDocs.size > 10 && trainDocs.size > 100);
});

test('openDataset on the prepared C4 sample: windows decode to C4 text, documents are views of the shard', async () => {
  const dir = join(scratchDir(), 'c4');
  await prepare({ inputs: [C4_SAMPLE], out: dir, tokenizer: 'gpt2', workers: 1 });
  const data = openDataset(dir);
  assert.match(data.description, /^c4 \(C4 \(allenai\/c4\); gpt2 tokens\)$/);
  assert.equal(data.vocabSize, 50257);
  const texts = c4SampleTexts();
  const doc = data.document(3);
  assert.equal(doc.at(-1), 50256);
  assert.equal(gpt2Decode([...doc.subarray(0, -1)]), texts[3]);
  assert.throws(() => data.document(1000), /document 1000 is out of range \(0 to 999\)/);
  const row = [...data.sampler('train', { batchSize: 1, seqLen: 2000, seed: 3 }).next().tokens];
  const pieces = gpt2Decode(row).split('<|endoftext|>');
  const inner = pieces.slice(1, -1);
  assert.ok(inner.length > 0, 'a 2001-token window spans a whole document');
  for (const piece of inner) assert.ok(texts.includes(piece), `a whole document inside the window is a C4 document: ${piece.slice(0, 60)}`);
});

test('openDataset keeps the corpus out of the JS heap: shards live in Buffers, tokens are views', (t) => {
  const dir = join(scratchDir(), 'big');
  const tokens = 20_000_000;
  writeCountingDataset(dir, Array.from({ length: 2000 }, () => tokens / 2000), 500);
  // Measured in a fresh process with gc() at hand, so nothing else's garbage blurs the numbers.
  const script = `
    import { openDataset } from ${JSON.stringify(join(repoRoot, 'kernel', 'src', 'data', 'dataset.ts'))};
    gc(); const before = process.memoryUsage();
    const data = openDataset(${JSON.stringify(dir)});
    gc(); const after = process.memoryUsage();
    console.log(JSON.stringify({ tokens: data.info().tokens, heap: after.heapUsed - before.heapUsed, external: after.arrayBuffers - before.arrayBuffers }));`;
  const run = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', cwd: repoRoot });
  assert.equal(run.status, 0, run.stderr);
  const { tokens: opened, heap, external } = JSON.parse(run.stdout) as { tokens: number; heap: number; external: number };
  assert.equal(opened, tokens);
  t.diagnostic(`opening ${tokens * 2} bytes of tokens: JS heap +${heap} bytes, array buffers +${external} bytes`);
  assert.ok(external >= tokens * 2, `shards outside the heap: ${external} bytes`);
  assert.ok(heap < tokens * 2 * 0.02, `the JS heap grew by ${heap} bytes for ${tokens * 2} bytes of tokens`);
});

test('openDataset refuses a folder that is not a prepared dataset, or whose shards disagree with dataset.json', () => {
  const dir = scratchDir();
  assert.throws(() => openDataset(dir), (e: unknown) => e instanceof MambalabError && /is not a prepared dataset \(no dataset.json\)/.test(e.message));
  const damaged = join(dir, 'damaged');
  writeCountingDataset(damaged, [10, 20, 30], 3);
  const manifestFile = join(damaged, 'dataset.json');
  const manifest = JSON.parse(readFileSync(manifestFile, 'utf8'));
  manifest.shards[0].documents = 4;
  manifest.documents = 4; // dataset.json agrees with itself, not with the shard
  writeFileSync(manifestFile, JSON.stringify(manifest));
  assert.throws(() => openDataset(damaged), /holds 3 documents and 60 tokens, but dataset.json says 4 and 60: the dataset is damaged/);
  assert.throws(() => openDataset(damaged, { validationFraction: 1 }), /validationFraction must be in \(0, 1\)/);
});

test('openDataset refuses a shard holding token ids outside the vocabulary dataset.json gives', () => {
  const dir = join(scratchDir(), 'ids');
  writeCountingDataset(dir, [10, 20, 30], 2); // ids 0..59
  const manifestFile = join(dir, 'dataset.json');
  const manifest = JSON.parse(readFileSync(manifestFile, 'utf8'));
  writeFileSync(manifestFile, JSON.stringify({ ...manifest, vocabSize: 40, endOfText: 39 }));
  assert.throws(
    () => openDataset(dir),
    (e: unknown) => e instanceof MambalabError && e.message === `${join(dir, 'shard-00001.arrow')}: token 10 is id 40, outside the vocabulary of 40 that dataset.json gives: the dataset is damaged; prepare it again`,
  );
  writeFileSync(manifestFile, JSON.stringify({ ...manifest, vocabSize: 60, endOfText: 59 }));
  assert.equal(openDataset(dir).vocabSize, 60);
});

test('Trainer.fit trains on an opened dataset, and a checkpoint resumes the same batches', async () => {
  const dir = join(scratchDir(), 'c4');
  await prepare({ inputs: [C4_SAMPLE], out: dir, tokenizer: 'gpt2', workers: 1 });
  const data = openDataset(dir);
  const config = { vocabSize: 50257, dModel: 32, pattern: 'M*2', seed: 9 };
  const options = { batchSize: 2, seqLen: 32, lr: 3e-3, warmupSteps: 1, seed: 5, totalSteps: 4 };
  const straight = new Trainer(createModel(config), options);
  const all = (await straight.fit(data, { steps: 4, evalBatches: 1 })).history.map((m) => m.loss);
  assert.ok(all.every(Number.isFinite));

  const checkpoint = scratchDir();
  const first = new Trainer(createModel(config), options);
  await first.fit(data, { steps: 2, evalBatches: 1 });
  first.saveCheckpoint(checkpoint);
  const saved = JSON.parse(readFileSync(join(checkpoint, 'trainer.json'), 'utf8')).sampler;
  assert.deepEqual(saved, { seed: 5, batches: 2, epoch: 0, position: 4, seqLen: 32 });
  const resumed = new Trainer(createModel(config), options);
  resumed.loadCheckpoint(checkpoint);
  const rest = (await resumed.fit(openDataset(dir), { steps: 2, evalBatches: 1 })).history.map((m) => m.loss);
  assert.deepEqual(rest, all.slice(2));
});
