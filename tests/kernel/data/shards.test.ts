import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { Int32, makeData, Uint16 } from 'apache-arrow';

import { readShard, writeShard } from '../../../kernel/src/data/shards.js';
import { MambalabError } from '../../../kernel/src/errors.js';
import { scratchDir } from '../../helpers.js';
import { arrowFile, TOKENS } from './helpers.js';

const tokens = Uint16Array.from({ length: 10 }, (_, i) => 100 + i);

/** A shard file whose tokens column has these offsets (and null bitmap) over the 10 tokens. */
function shardWith(path: string, offsets: number[], nulls?: Uint8Array): string {
  const child = makeData({ type: new Uint16(), length: tokens.length, data: tokens });
  const list = makeData({ type: TOKENS, length: offsets.length - 1, nullCount: nulls ? 1 : 0, nullBitmap: nulls, valueOffsets: Int32Array.from(offsets), child });
  writeFileSync(path, arrowFile({ tokens: list }));
  return path;
}

test('writeShard and readShard round-trip documents, sets and metadata', () => {
  const path = join(scratchDir(), 'shard-00000.arrow');
  writeShard(path, { tokens, offsets: Int32Array.from([0, 3, 3, 10]), sets: ['a', null, 'b'] }, { tokenizer: 'gpt2' });
  const shard = readShard(path, { sets: true });
  assert.deepEqual(shard.tokens, tokens);
  assert.deepEqual(shard.offsets, Int32Array.from([0, 3, 3, 10]));
  assert.deepEqual(shard.sets, ['a', null, 'b']);
  assert.equal(shard.metadata.get('tokenizer'), 'gpt2');
});

test('offsets out of order or past the tokens, and null documents are a damaged shard, named', () => {
  const path = join(scratchDir(), 'shard-00000.arrow');
  const cases: [number[], RegExp, Uint8Array?][] = [
    [[0, 6, 4, 10], /document 1 ends \(at token 4\) before it starts \(at 6\)/],
    [[0, 6, 14], /its documents end at token 14, past the \d+ tokens it holds/],
    [[0, 6, 10], /1 of its documents are null/, Uint8Array.from([0b10])],
  ];
  for (const [offsets, why, nulls] of cases) {
    shardWith(path, offsets, nulls);
    assert.throws(
      () => readShard(path),
      (e: unknown) => e instanceof MambalabError && e.message.startsWith(`${path}: the shard is damaged: `) && why.test(e.message),
      `offsets ${offsets}`,
    );
  }
  shardWith(path, [0, 6, 6, 10]);
  assert.deepEqual(readShard(path).offsets, Int32Array.from([0, 6, 6, 10]), 'an empty document is fine');
});

test('a set column that does not hold names is refused when sets are read', () => {
  const path = join(scratchDir(), 'shard-00000.arrow');
  const child = makeData({ type: new Uint16(), length: tokens.length, data: tokens });
  const list = makeData({ type: TOKENS, length: 2, nullCount: 0, valueOffsets: Int32Array.from([0, 5, 10]), child });
  writeFileSync(path, arrowFile({ tokens: list, set: makeData({ type: new Int32(), length: 2, data: Int32Array.from([1, 2]) }) }));
  assert.throws(() => readShard(path, { sets: true }), new RegExp(`^MambalabError: ${path}: its 'set' column is Int32, not set names \\(strings\\)`));
  assert.equal(readShard(path).sets, undefined, 'without sets, the column is not read');
});
