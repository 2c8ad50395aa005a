import assert from 'node:assert/strict';
import { test } from 'node:test';

import { toBatch } from '../../../kernel/src/data/batch.js';

test('rows of token ids become one flat Int32Array batch', () => {
  assert.deepEqual(toBatch([[1, 2, 3], [4, 5, 6]]), { tokens: Int32Array.from([1, 2, 3, 4, 5, 6]), batchSize: 2, seqLen: 2 });
});

test('a flat array of ids, or a row that is not an array, says what a batch is', () => {
  const flat = [1, 2, 3] as unknown as number[][];
  assert.throws(() => toBatch(flat), { name: 'MambalabError', message: 'batch: expected rows of token ids (number[][]), got one flat array of numbers; a single sequence is [ids]' });
  assert.throws(() => toBatch(['1 2 3'] as unknown as number[][]), { name: 'MambalabError', message: 'batch: row 0 is "1 2 3", not an array of token ids' });
  assert.throws(() => toBatch([[1, 2], 3] as unknown as number[][]), { name: 'MambalabError', message: 'batch: row 1 is 3, not an array of token ids' });
  assert.throws(() => toBatch([[1, 2], [3]]), /row 1 has 1 ids, expected 2 like row 0/);
});
