// The PyTorch checkpoint reader against PyTorch itself: every float dtype torch.save writes,
// views (offsets, transposes), tied storages, parameters, nested dicts; and what it refuses.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { readTorchCheckpoint, unpickle } from '../../../../kernel/src/models/import/torch-pickle.js';
import { scratchDir } from '../../../helpers.js';
import { python } from './checkpoints.js';

test('tensors of every float dtype, views and tied storages read as PyTorch holds them', () => {
  const dir = scratchDir();
  const file = join(dir, 'state.bin');
  python(
    `
import json, sys, torch
g = torch.Generator().manual_seed(3)
base = torch.randn(5, 6, generator=g) * 3
sd = {
    "f32": base,
    "f16": base.half(),
    "bf16": base.bfloat16(),
    "f64": base.double(),
    "transposed": base.t(),
    "row": base[2],
    "column": base[:, 4],
    "tied": base,
    "param": torch.nn.Parameter(base[:2].clone()),
    "scalar": torch.tensor(2.5),
    "empty": torch.zeros(0, 3),
    "special": torch.tensor([0.0, -0.0, 1e-40, 65504.0, -2.0 ** -24], dtype=torch.float16),
}
torch.save({"model": sd, "iteration": 7, "note": "kept out"}, sys.argv[1])
json.dump({k: [list(v.shape), v.float().flatten().tolist()] for k, v in sd.items()}, open(sys.argv[2], "w"))
`,
    file,
    join(dir, 'expected.json'),
  );
  const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as Record<string, [number[], number[]]>;
  const source = readTorchCheckpoint(file, 'model');
  assert.deepEqual([...source.tensors.keys()].sort(), Object.keys(expected).sort());
  for (const [name, [shape, values]] of Object.entries(expected)) {
    const t = source.tensors.get(name)!;
    assert.deepEqual(t.shape, shape, name);
    assert.deepEqual([...t.read()], [...Float32Array.from(values)], name);
  }
  assert.equal(source.tensors.get('tied')!.storage, source.tensors.get('f32')!.storage);
  assert.deepEqual(['F32', 'F16', 'BF16', 'F64'], ['f32', 'f16', 'bf16', 'f64'].map((n) => source.tensors.get(n)!.dtype));
  assert.throws(() => readTorchCheckpoint(file), /state\.bin .*entry "model" is a dict, not a tensor/);
  assert.throws(() => readTorchCheckpoint(file, 'optimizer'), /state\.bin .*it holds a dict of "model", "iteration", "note", with no 'optimizer' entry/);
});

test('the pickle machine refuses opcodes and globals beyond tensors and dicts', () => {
  const broken = (why: string): never => {
    throw new Error(why);
  };
  const pickle = (...parts: (string | number[])[]) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))));
  // {"a": 1} the way protocol 2 writes it.
  const dict = unpickle(pickle([0x80, 2], '}q\x00(X\x01\x00\x00\x00aK\x01u.'), broken) as Map<string, unknown>;
  assert.deepEqual([...dict], [['a', 1]]);
  assert.throws(() => unpickle(pickle([0x80, 2], 'cos\nsystem\n.'), broken), /refers to the Python global 'os\.system'/);
  assert.throws(() => unpickle(pickle([0x80, 2], 'cbuiltins\neval\n.'), broken), /global 'builtins\.eval'/);
  assert.throws(() => unpickle(pickle([0x80, 2], 'ctorch\nLongStorage\n.'), broken), /LongStorage: only float32, float16, bfloat16 and float64 weights/);
  assert.throws(() => unpickle(pickle([0x80, 2], 'i__main__\nX\n.'), broken), /opcode 0x69 at byte 2/); // INST
  assert.throws(() => unpickle(pickle([0x80, 2], '}X\xff\xff\xff\x7f'), broken), /ends inside an instruction/);
  assert.throws(() => unpickle(pickle([0x80, 2], 'h\x05.'), broken), /recalls memo 5, which it never stored/);
  assert.throws(() => unpickle(pickle([0x80, 2], '}}.'), broken), /stops with its stack unbalanced/);
  // A state_dict's _metadata arrives as BUILD on the OrderedDict: not weights, dropped.
  assert.deepEqual([...(unpickle(pickle([0x80, 2], 'ccollections\nOrderedDict\n)R}b.'), broken) as Map<string, unknown>)], []);
});
