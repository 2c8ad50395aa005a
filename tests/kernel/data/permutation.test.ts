import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Permutation } from '../../../kernel/src/data/permutation.js';

test('permutation: every size from 1 to 300 and some awkward ones are shuffled into a bijection', () => {
  for (const n of [...Array.from({ length: 300 }, (_, i) => i + 1), 1023, 1024, 1025, 4097, 65537]) {
    const p = new Permutation(n, n * 7919);
    const seen = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const x = p.at(i);
      assert.ok(Number.isInteger(x) && x >= 0 && x < n, `at(${i}) = ${x} for n = ${n}`);
      assert.equal(seen[x], 0, `n = ${n}: ${x} came twice`);
      seen[x] = 1;
    }
  }
});

test('permutation: the key changes the order, the same key gives it back, and it is not the identity', () => {
  const n = 10_000;
  const order = (key: number) => Array.from({ length: n }, (_, i) => new Permutation(n, key).at(i));
  const a = order(1);
  assert.deepEqual(order(1), a);
  const b = order(2);
  assert.ok(a.filter((x, i) => x === b[i]).length < n / 100, 'two keys should agree on about 1 in n places');
  assert.ok(a.filter((x, i) => x === i).length < n / 100);
});

test('permutation: large sizes (2^40) map in range', () => {
  const n = 2 ** 40 + 12345;
  const p = new Permutation(n, 3);
  for (let i = 0; i < 1000; i++) {
    const x = p.at(n - 1 - i);
    assert.ok(Number.isSafeInteger(x) && x >= 0 && x < n);
  }
  assert.throws(() => new Permutation(0, 1), /integer in \[1, 2\^52\]/);
});
