import assert from 'node:assert/strict';
import { test } from 'node:test';

import { engineLayers, parsePattern } from '../../../kernel/src/models/pattern.js';

test('parsePattern expands repeats, sequences and parallel groups', () => {
  assert.deepEqual(parsePattern('M*3'), [['M'], ['M'], ['M']]);
  assert.deepEqual(parsePattern('ME*2'), [['M'], ['E'], ['M'], ['E']]);
  assert.deepEqual(parsePattern('(M|E)*2'), [['M', 'E'], ['M', 'E']]);
  assert.deepEqual(parsePattern('MA M*2'), [['M'], ['A'], ['M'], ['M']]);
  assert.deepEqual(parsePattern('F'), [['F']]);
  assert.equal(parsePattern('ME*2048').length, 4096);
});

test('parsePattern points at the offending character', () => {
  const cases: [string, RegExp][] = [
    ['MX', /unknown layer 'X' at position 1/],
    ['M*0', /positive count after '\*' at position 2/],
    ['*2', /'\*' must follow layers at position 0/],
    ['(M|E', /expected '\|' or '\)' in a parallel group at position 4/],
    ['(M)', /at least two branches/],
    ['M*2E', /expected a space or the end after '\*N' at position 3/],
    ['', /empty/],
    // Refused before anything is expanded: this would be 2 billion layers.
    ['M*2000000000', /more than 4096 layers at position 11/],
    ['M*2048 ME*1025', /more than 4096 layers at position 13/],
  ];
  for (const [pattern, message] of cases) {
    assert.throws(() => parsePattern(pattern), message, pattern);
  }
  assert.throws(() => parsePattern('MMXM'), (e: Error) => e.message.includes('MMXM\n    ^'));
});

test('engineLayers gives the kinds of each layer, attention and parallel groups included, and rejects repeats in a group', () => {
  assert.deepEqual(engineLayers('M*4'), [['M'], ['M'], ['M'], ['M']]);
  assert.deepEqual(engineLayers('(M|E) F'), [['M', 'E'], ['F']]);
  assert.deepEqual(engineLayers('AF*2'), [['A'], ['F'], ['A'], ['F']]);
  assert.deepEqual(engineLayers('(A|M) (A|E|F)'), [['A', 'M'], ['A', 'E', 'F']]);
  assert.throws(() => engineLayers('(M|M)'), /repeats a kind/);
  assert.throws(() => engineLayers('M (A|A)'), /layer 1 repeats a kind in its parallel group \(A\|A\)/);
});
