import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { MambalabError } from '../../../kernel/src/errors.js';
import { firstNonFinite, readSafetensors, writeSafetensors } from '../../../kernel/src/models/safetensors.js';
import { referencePython } from '../../bench/reference/python.js';
import { scratchDir } from '../../helpers.js';

test('writeSafetensors and readSafetensors round-trip float32 and float64 with metadata', () => {
  const path = join(scratchDir(), 'x.safetensors');
  const a = Float32Array.from([1.5, -2, 3.25, 0, 7, 8]);
  const b = Float64Array.from([Math.PI]);
  writeSafetensors(path, [{ name: 'a', shape: [2, 3], data: a }, { name: 'b.c', shape: [1], data: b }], { note: 'hi' });
  const file = readSafetensors(path);
  assert.equal(file.metadata.note, 'hi');
  assert.deepEqual(file.tensors.get('a')!.data, a);
  assert.deepEqual(file.tensors.get('a')!.shape, [2, 3]);
  assert.deepEqual(file.tensors.get('b.c')!.data, b);
  assert.equal(readFileSync(path).readBigUInt64LE(0) % 8n, 0n, 'header padded to 8 bytes');
});

test('a failed write leaves the previous file intact', () => {
  const path = join(scratchDir(), 'keep.safetensors');
  writeSafetensors(path, [{ name: 'w', shape: [2], data: Float32Array.from([1, 2]) }]);
  const before = readFileSync(path);
  assert.throws(() => writeSafetensors(path, [{ name: 'w', shape: [3], data: Float32Array.from([1, 2]) }]), /has 2 values for shape \[3\]/);
  assert.deepEqual(readFileSync(path), before);
});

test('lazy tensors are read one at a time as the writer reaches them; a failing one leaves the old file and no temporary', () => {
  const dir = scratchDir();
  const path = join(dir, 'lazy.safetensors');
  const order: string[] = [];
  const lazy = (name: string, values: number[]) => ({
    name,
    shape: [values.length],
    dtype: 'F32' as const,
    read: () => {
      order.push(name);
      return Float32Array.from(values);
    },
  });
  writeSafetensors(path, [lazy('a', [1, 2]), { name: 'b', shape: [1], data: Float64Array.from([3]) }, lazy('c', [4])]);
  assert.deepEqual(order, ['a', 'c']);
  const file = readSafetensors(path);
  assert.deepEqual([...file.tensors.keys()], ['a', 'b', 'c']);
  assert.deepEqual(Array.from(file.tensors.get('c')!.data), [4]);

  const before = readFileSync(path);
  const failing = { ...lazy('a', [1, 2]), read: () => { throw new Error('device lost'); } };
  assert.throws(() => writeSafetensors(path, [lazy('z', [0]), failing]), /device lost/);
  assert.throws(() => writeSafetensors(path, [{ ...lazy('a', [1, 2, 3]), shape: [2] }]), /read 3 F32 values for shape \[2\] of F32/);
  assert.deepEqual(readFileSync(path), before);
  assert.deepEqual(readdirSync(dir), ['lazy.safetensors'], 'the temporary file is removed');
});

test('corrupt files are clear errors', () => {
  const dir = scratchDir();
  const path = join(dir, 'bad.safetensors');
  writeFileSync(path, Buffer.concat([Buffer.from([4, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{no}')]));
  assert.throws(() => readSafetensors(path), /its JSON header does not parse/);
  writeFileSync(path, Buffer.from([255, 255, 0, 0, 0, 0, 0, 0, 1]));
  assert.throws(() => readSafetensors(path), /the header claims 65535 bytes but the file has 1/);
  assert.throws(() => readSafetensors(join(dir, 'missing.safetensors')), /cannot read/);
  assert.throws(() => readSafetensors(dir), /cannot read .* \(not a file\)/);
});

/** A safetensors file with this header (as JSON) over `data` bytes. */
function withHeader(path: string, header: unknown, data = Buffer.alloc(0)): string {
  const json = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(path, Buffer.concat([length, json, data]));
  return path;
}

test('headers of the wrong shape are clear errors naming the file and the tensor', () => {
  const path = join(scratchDir(), 'shape.safetensors');
  const eight = Buffer.alloc(8);
  const cases: [unknown, RegExp][] = [
    [[1, 2], /its header is \[1,2\], not a JSON object/],
    [{ __metadata__: { step: 3 } }, /its __metadata__ is not an object of strings/],
    [{ w: null }, /tensor w is described by null, not an object/],
    [{ w: { dtype: 'F32', shape: 2, data_offsets: [0, 8] } }, /tensor w has shape 2, not a list of sizes/],
    [{ w: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, /tensor w has shape \[-2\]/],
    [{ w: { dtype: 'F32', shape: [2] } }, /tensor w has data_offsets undefined, not \[begin, end\] byte offsets/],
    [{ w: { dtype: 'F32', shape: [2], data_offsets: [8, 0] } }, /tensor w has data_offsets \[8,0\]/],
    [{ w: { dtype: 7, shape: [2], data_offsets: [0, 8] } }, /tensor w has dtype 7; this reader takes F32 and F64/],
  ];
  for (const [header, message] of cases) {
    withHeader(path, header, eight);
    assert.throws(() => readSafetensors(path), (e: unknown) => e instanceof MambalabError && message.test(e.message) && e.message.includes(path), JSON.stringify(header));
  }
});

test('the tensors must fill the data exactly, as the format requires: no gaps, overlaps or extra bytes', () => {
  const path = join(scratchDir(), 'cover.safetensors');
  const f32 = (begin: number) => ({ dtype: 'F32', shape: [1], data_offsets: [begin, begin + 4] });
  withHeader(path, { a: f32(0), b: f32(8) }, Buffer.alloc(12));
  assert.throws(() => readSafetensors(path), /bytes 4 to 8 of the data belong to no tensor/);
  withHeader(path, { a: f32(0), b: f32(0) }, Buffer.alloc(4));
  assert.throws(() => readSafetensors(path), /tensor b overlaps another tensor's bytes/);
  withHeader(path, { a: f32(0) }, Buffer.alloc(7));
  assert.throws(() => readSafetensors(path), /bytes 4 to 7 of the data belong to no tensor/);
  withHeader(path, { a: f32(0) }, Buffer.alloc(4));
  assert.deepEqual(readSafetensors(path).tensors.get('a')!.data, Float32Array.from([0]));
});

test('a tensor holding NaN or infinity is refused: weights are finite', () => {
  const path = join(scratchDir(), 'nan.safetensors');
  for (const bad of [Number.NaN, Number.POSITIVE_INFINITY]) {
    writeSafetensors(path, [{ name: 'w', shape: [3], data: Float32Array.from([1, bad, 2]) }]);
    assert.throws(() => readSafetensors(path), new RegExp(`${path}.*tensor w holds ${bad} at index 1`));
  }
});

test("Python's safetensors reads what we write, names, shapes and values", () => {
  const python = referencePython();
  const path = join(scratchDir(), 'py.safetensors');
  writeSafetensors(path, [
    { name: 'backbone.layers.0.mixer.conv1d.weight', shape: [2, 1, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) },
    { name: 'x', shape: [2], data: Float64Array.from([0.5, -0.25]) },
  ]);
  const script = `
import json, sys
from safetensors.numpy import load_file
t = load_file(sys.argv[1])
print(json.dumps({k: [list(v.shape), str(v.dtype), v.ravel().tolist()] for k, v in t.items()}))`;
  const run = spawnSync(python, ['-c', script, path], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  assert.deepEqual(JSON.parse(run.stdout), {
    'backbone.layers.0.mixer.conv1d.weight': [[2, 1, 3], 'float32', [1, 2, 3, 4, 5, 6]],
    x: [[2], 'float64', [0.5, -0.25]],
  });
  assert.ok(existsSync(path));
});

test('firstNonFinite finds the first NaN or infinity, and only those', () => {
  const finite = [0, -0, 1e-45, -3.4e38, 3.4e38];
  assert.equal(firstNonFinite(Float32Array.from(finite)), -1);
  assert.equal(firstNonFinite(Float64Array.from([...finite, Number.MAX_VALUE, -Number.MAX_VALUE])), -1);
  for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
    assert.equal(firstNonFinite(Float32Array.from([...finite, bad, bad])), finite.length, String(bad));
    assert.equal(firstNonFinite(Float64Array.from([bad])), 0, String(bad));
  }
  assert.equal(firstNonFinite(new Float32Array(0)), -1);
});
