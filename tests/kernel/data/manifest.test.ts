import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { readManifest } from '../../../kernel/src/data/manifest.js';
import { MambalabError } from '../../../kernel/src/errors.js';
import { scratchDir } from '../../helpers.js';
import { writeCountingDataset } from './helpers.js';

test('a dataset.json of the wrong shape or that contradicts itself is named, with the field', () => {
  const dir = scratchDir();
  writeCountingDataset(dir, [5, 7, 9], 2);
  const file = join(dir, 'dataset.json');
  const saved = JSON.parse(readFileSync(file, 'utf8'));
  assert.equal(readManifest(dir).documents, 3);
  const refused = (edit: (m: Record<string, unknown> & typeof saved) => void, message: RegExp) => {
    const manifest = structuredClone(saved);
    edit(manifest);
    writeFileSync(file, JSON.stringify(manifest));
    assert.throws(() => readManifest(dir), (e: unknown) => e instanceof MambalabError && e.message.startsWith(`${file}: `) && message.test(e.message), message.source);
  };
  refused((m) => (m.shards = 'shard-00000.arrow'), /shards is "shard-00000.arrow", expected a list/);
  refused((m) => (m.shards[1] = null), /shards\[1\] is null, expected an object/);
  refused((m) => delete m.shards[0].file, /shards\[0\]\.file is undefined, expected a string/);
  refused((m) => (m.skipped = { count: 1 }), /skipped\.examples is undefined, expected a list/);
  refused((m) => (m.sets = { RedPajamaC4: 3 }), /sets\.RedPajamaC4 is 3, expected an object/);
  refused((m) => (m.vocabSize = 1.5), /vocabSize is 1.5, expected a non-negative integer/);
  refused((m) => (m.vocabSize = 70000), /vocabSize 70000 is outside \[1, 65536\]/);
  refused((m) => (m.endOfText = m.vocabSize), /endOfText 50257 is outside the vocabulary of 50257/);
  refused((m) => (m.shards[0].file = '../../elsewhere.arrow'), /shard '..\/..\/elsewhere.arrow' is not the name of an .arrow file in the dataset's folder/);
  refused((m) => (m.shards[0].documents += 1), /its shards hold 4 documents, but it says 3 in all: the dataset is damaged/);
  refused((m) => (m.tokens = 0), /its shards hold 21 tokens, but it says 0 in all/);
});
