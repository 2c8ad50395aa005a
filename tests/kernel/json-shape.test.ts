import assert from 'node:assert/strict';
import { test } from 'node:test';

import { MambalabError } from '../../kernel/src/errors.js';
import { shaped, type Shape } from '../../kernel/src/json-shape.js';

const SHAPE: Shape = { name: 'string', size: 'count', 'rate?': 'number', on: 'boolean', rows: [{ at: 'count' }], extra: { '*': 'string' }, free: 'any' };
const good = { name: 'a', size: 3, on: true, rows: [{ at: 0 }, { at: 2 }], extra: { x: 'y' }, free: [null] };

test('a document of the shape comes back as it is', () => {
  assert.equal(shaped('f.json', good, SHAPE), good);
  assert.equal(shaped<typeof good>('f.json', { ...good, rate: 0.5, unknown: 1 }, SHAPE).size, 3, 'optional and unknown keys are fine');
});

test('the first field of another type is named with its path and the file', () => {
  const refused = (value: unknown, message: string) =>
    assert.throws(() => shaped('/x/f.json', value, SHAPE), (e: unknown) => e instanceof MambalabError && e.message === message, message);
  refused([good], '/x/f.json: the document is [{"name":"a","size":3,"on":true,"rows":[{"at":0},{"at":2}],"…, expected an object');
  refused({ ...good, name: 7 }, '/x/f.json: name is 7, expected a string');
  refused({ ...good, size: -1 }, '/x/f.json: size is -1, expected a non-negative integer');
  refused({ ...good, size: 1.5 }, '/x/f.json: size is 1.5, expected a non-negative integer');
  refused({ ...good, rate: null }, '/x/f.json: rate is null, expected a number');
  refused({ ...good, on: 'yes' }, '/x/f.json: on is "yes", expected true or false');
  refused({ ...good, rows: { at: 1 } }, '/x/f.json: rows is {"at":1}, expected a list');
  refused({ ...good, rows: [{ at: 1 }, null] }, '/x/f.json: rows[1] is null, expected an object');
  refused({ ...good, extra: { x: 'y', z: 1 } }, '/x/f.json: extra.z is 1, expected a string');
  const { size: _, ...noSize } = good;
  refused(noSize, '/x/f.json: size is undefined, expected a non-negative integer');
});
