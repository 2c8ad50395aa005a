import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { tableFromArrays, tableToIPC } from 'apache-arrow';

import { readArrowFile } from '../../../kernel/src/data/arrow-file.js';
import { readShard, writeShard } from '../../../kernel/src/data/shards.js';
import { MambalabError } from '../../../kernel/src/errors.js';
import { scratchDir } from '../../helpers.js';

const failure = (why: string) => new MambalabError(`bad file: ${why}`);

test('readArrowFile reads every record batch of an IPC file with its schema metadata', () => {
  const path = join(scratchDir(), 'shard.arrow');
  writeShard(path, { tokens: Uint16Array.from([5, 6, 7, 8]), offsets: Int32Array.from([0, 1, 4]) }, { tokenizer: 'gpt2' });
  const table = readArrowFile(path, failure);
  assert.equal(table.numRows, 2);
  assert.equal(table.schema.metadata.get('tokenizer'), 'gpt2');
  assert.deepEqual([...table.getChild('tokens')!.get(1)!], [6, 7, 8]);
});

test('a footer pointing at a message of another kind is an error, not an endless loop', () => {
  const path = join(scratchDir(), 'shard-00000.arrow');
  writeShard(path, { tokens: Uint16Array.from({ length: 100 }, (_, i) => i), offsets: Int32Array.from([0, 10, 50, 100]) }, {});
  const damaged = readFileSync(path);
  damaged.writeUInt32LE(0xffffffff, 12); // the schema message's length, read as a second continuation marker
  writeFileSync(path, damaged);
  // apache-arrow's tableFromIPC never returns on this file.
  assert.throws(() => readArrowFile(path, failure), /^MambalabError: bad file: Expected RecordBatch Message/);
  assert.throws(() => readShard(path), (e: unknown) => e instanceof MambalabError && e.message.startsWith(`${path}: not a readable Arrow IPC shard`));
});

test('a vector length in the metadata set past its bytes is refused at once, wherever it is', () => {
  const path = join(scratchDir(), 'metrics.arrow');
  const good = Buffer.from(tableToIPC(tableFromArrays({ step: Int32Array.from([1, 2, 3]), loss: Float64Array.from([5, 4, 3]) }), 'file'));
  const refusedVectors: number[] = [];
  // Every 4-byte field set to 2^26: among them the lengths of the record batch's field nodes and
  // buffers, which apache-arrow's decoder would walk entry by entry for minutes.
  for (let at = 0; at + 4 <= good.length; at++) {
    const damaged = Buffer.from(good);
    damaged.writeUInt32LE(1 << 26, at);
    writeFileSync(path, damaged);
    try {
      readArrowFile(path, failure);
    } catch (e) {
      assert.ok(e instanceof MambalabError, `byte ${at}: ${String(e)}`);
      if (/a flatbuffer vector of 67108864 entries/.test(e.message)) refusedVectors.push(at);
    }
  }
  assert.ok(refusedVectors.length >= 3, `vector lengths refused at bytes ${refusedVectors}`);
});

test('bytes that are not the IPC file format (a stream, text, nothing) are refused by name', () => {
  const path = join(scratchDir(), 'x.arrow');
  const table = tableFromArrays({ step: Int32Array.from([1, 2]) });
  for (const bytes of [Buffer.from(tableToIPC(table, 'stream')), Buffer.from('step,loss\n1,2\n'), Buffer.alloc(0)]) {
    writeFileSync(path, bytes);
    assert.throws(() => readArrowFile(path, failure), /^MambalabError: bad file: the bytes are not the Arrow IPC file format/);
  }
  assert.throws(() => readArrowFile(`${path}.missing`, failure), /^MambalabError: bad file: ENOENT/);
});
