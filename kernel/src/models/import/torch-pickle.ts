// PyTorch checkpoints (torch.save since 1.6: a zip of data.pkl and data/<key> storages) read
// without Python. data.pkl is interpreted by a pickle machine that knows only the opcodes
// torch.save writes for dicts, lists, numbers, strings and tensors, and only the globals that
// rebuild tensors and ordered dicts: any other opcode or global (code a pickle could run, an
// object of some class) is refused, naming it, before anything else happens.
import { closeSync, fstatSync, openSync } from 'node:fs';

import { MambalabError } from '../../errors.js';
import { checkFinite, decodeFloats, ELEMENT_BYTES, numel, shortName, type SourceDType, type SourceTensor, type TensorSource } from './source.js';
import { readBytes, readZipDirectory, type ZipEntry } from './zip.js';

/** A tensor as data.pkl describes it: a view (offset, shape, strides in elements) of a storage. */
interface TensorRef {
  kind: 'tensor';
  storage: StorageRef;
  offset: number;
  shape: number[];
  stride: number[];
}

interface StorageRef {
  kind: 'storage';
  key: string;
  dtype: SourceDType;
  numel: number;
}

/** A global the machine allows: what it builds when called (REDUCE). */
interface Callable {
  kind: 'global';
  name: string;
}

class Tuple {
  constructor(readonly items: Value[]) {}
}

type Value = null | boolean | number | string | Value[] | Tuple | Map<string, Value> | TensorRef | StorageRef | Callable | { kind: 'storage-type'; dtype: SourceDType };

const STORAGE_TYPES: Record<string, SourceDType> = {
  'torch FloatStorage': 'F32',
  'torch HalfStorage': 'F16',
  'torch BFloat16Storage': 'BF16',
  'torch DoubleStorage': 'F64',
};
const CALLABLES = new Set(['collections OrderedDict', 'torch._utils _rebuild_tensor_v2', 'torch._utils _rebuild_parameter']);
const MARK = Symbol('mark');
const MAX_DEPTH = 1 << 16;

/** Interprets data.pkl; `broken` throws naming the file. */
export function unpickle(bytes: Buffer, broken: (why: string) => never): Value {
  const stack: (Value | typeof MARK)[] = [];
  const marks: number[] = [];
  const memo = new Map<number, Value>();
  let at = 0;
  const need = (n: number): number => {
    if (at + n > bytes.length) broken(`data.pkl ends inside an instruction at byte ${at} (truncated?)`);
    const start = at;
    at += n;
    return start;
  };
  const pop = (): Value => {
    const v = stack.pop();
    if (v === undefined || v === MARK) broken(`data.pkl pops an empty stack at byte ${at}`);
    return v as Value;
  };
  const popMark = (): Value[] => {
    const mark = marks.pop();
    if (mark === undefined) broken(`data.pkl closes a mark it never opened at byte ${at}`);
    const items = stack.splice(mark!);
    items.shift(); // the mark itself
    if (items.includes(MARK)) broken(`data.pkl nests marks at byte ${at}`);
    return items as Value[];
  };
  const push = (v: Value): void => {
    if (stack.length > MAX_DEPTH) broken(`data.pkl stacks more than ${MAX_DEPTH} values`);
    stack.push(v);
  };
  const top = (): Value => {
    const v = stack.at(-1);
    if (v === undefined || v === MARK) broken(`data.pkl uses an empty stack at byte ${at}`);
    return v as Value;
  };
  const text = (n: number): string => bytes.toString('utf8', need(n), at);
  const setItems = (dict: Value, items: Value[]): void => {
    if (!(dict instanceof Map)) broken(`data.pkl sets items on a ${describe(dict)} at byte ${at}`);
    if (items.length % 2) broken(`data.pkl sets a key without a value at byte ${at}`);
    for (let i = 0; i < items.length; i += 2) {
      const key = items[i];
      if (typeof key !== 'string' && typeof key !== 'number') broken(`data.pkl uses a ${describe(key!)} as a dict key`);
      (dict as Map<string, Value>).set(String(key), items[i + 1]!);
    }
  };

  for (;;) {
    const opAt = need(1);
    const op = bytes[opAt]!;
    switch (op) {
      case 0x80: // PROTO
        if (bytes[need(1)]! > 5) broken(`data.pkl is pickle protocol ${bytes[at - 1]}, newer than any torch.save`);
        break;
      case 0x95: // FRAME (protocol 4): a length hint only
        need(8);
        break;
      case 0x2e: // STOP
        if (stack.length !== 1 || marks.length) broken('data.pkl stops with its stack unbalanced');
        return pop();
      case 0x7d: // EMPTY_DICT
        push(new Map());
        break;
      case 0x5d: // EMPTY_LIST
        push([]);
        break;
      case 0x29: // EMPTY_TUPLE
        push(new Tuple([]));
        break;
      case 0x28: // MARK
        marks.push(stack.length);
        stack.push(MARK);
        break;
      case 0x74: // TUPLE
        push(new Tuple(popMark()));
        break;
      case 0x85: // TUPLE1
      case 0x86: // TUPLE2
      case 0x87: {
        // TUPLE3
        const n = op - 0x84;
        const items: Value[] = [];
        for (let i = 0; i < n; i++) items.unshift(pop());
        push(new Tuple(items));
        break;
      }
      case 0x6c: // LIST
        push(popMark());
        break;
      case 0x64: {
        // DICT
        const dict = new Map<string, Value>();
        setItems(dict, popMark());
        push(dict);
        break;
      }
      case 0x71: // BINPUT
        memo.set(bytes[need(1)]!, top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(bytes.readUInt32LE(need(4)), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
      case 0x6a: {
        // LONG_BINGET
        const key = op === 0x68 ? bytes[need(1)]! : bytes.readUInt32LE(need(4));
        if (!memo.has(key)) broken(`data.pkl recalls memo ${key}, which it never stored`);
        push(memo.get(key)!);
        break;
      }
      case 0x58: // BINUNICODE
        push(text(bytes.readUInt32LE(need(4))));
        break;
      case 0x8c: // SHORT_BINUNICODE
        push(text(bytes[need(1)]!));
        break;
      case 0x4b: // BININT1
        push(bytes[need(1)]!);
        break;
      case 0x4d: // BININT2
        push(bytes.readUInt16LE(need(2)));
        break;
      case 0x4a: // BININT
        push(bytes.readInt32LE(need(4)));
        break;
      case 0x8a: {
        // LONG1: little-endian two's complement of n bytes
        const n = bytes[need(1)]!;
        if (n > 8) broken(`data.pkl holds a ${n}-byte integer`);
        const start = need(n);
        let value = 0n;
        for (let i = n - 1; i >= 0; i--) value = (value << 8n) | BigInt(bytes[start + i]!);
        if (n > 0 && bytes[start + n - 1]! & 0x80) value -= 1n << BigInt(8 * n);
        if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < -BigInt(Number.MAX_SAFE_INTEGER)) broken(`data.pkl holds the integer ${value}, beyond any size`);
        push(Number(value));
        break;
      }
      case 0x47: // BINFLOAT (big-endian)
        push(bytes.readDoubleBE(need(8)));
        break;
      case 0x4e: // NONE
        push(null);
        break;
      case 0x88: // NEWTRUE
        push(true);
        break;
      case 0x89: // NEWFALSE
        push(false);
        break;
      case 0x61: {
        // APPEND
        const item = pop();
        const list = top();
        if (!Array.isArray(list)) broken(`data.pkl appends to a ${describe(list)}`);
        (list as Value[]).push(item);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        const list = top();
        if (!Array.isArray(list)) broken(`data.pkl appends to a ${describe(list)}`);
        (list as Value[]).push(...items);
        break;
      }
      case 0x73: {
        // SETITEM
        const value = pop();
        const key = pop();
        setItems(top(), [key, value]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x63: {
        // GLOBAL "module\nname\n"
        const end1 = bytes.indexOf(0x0a, at);
        const end2 = end1 < 0 ? -1 : bytes.indexOf(0x0a, end1 + 1);
        if (end2 < 0) broken(`data.pkl ends inside a global name at byte ${at} (truncated?)`);
        const name = `${bytes.toString('utf8', at, end1)} ${bytes.toString('utf8', end1 + 1, end2)}`;
        at = end2 + 1;
        push(global(name, broken));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') broken('data.pkl names a global by something other than strings');
        push(global(`${module} ${name}`, broken));
        break;
      }
      case 0x51: // BINPERSID
        push(storage(pop(), broken));
        break;
      case 0x52: {
        // REDUCE
        const args = pop();
        const callable = pop();
        push(call(callable, args, broken));
        break;
      }
      case 0x62: {
        // BUILD: an OrderedDict's attributes (a state dict's _metadata): not weights, dropped
        const state = pop();
        if (!(top() instanceof Map) || !(state instanceof Map || state === null)) broken(`data.pkl sets the state of a ${describe(top())}, which only an object of some class has`);
        break;
      }
      default:
        broken(`data.pkl uses pickle opcode 0x${op.toString(16).padStart(2, '0')} at byte ${opAt}, which torch.save does not write for tensors and dicts; refused (a pickle can run code)`);
    }
  }
}

function describe(v: Value | typeof MARK): string {
  if (v === null) return 'None';
  if (v instanceof Map) return 'dict';
  if (v instanceof Tuple) return 'tuple';
  if (Array.isArray(v)) return 'list';
  if (typeof v === 'object') return v.kind;
  return typeof v;
}

/** A name from the file, quoted and cut short for a message. */
function quoted(text: string): string {
  return JSON.stringify(text.length > 60 ? `${text.slice(0, 60)}…` : text);
}

function global(name: string, broken: (why: string) => never): Value {
  if (!/^[A-Za-z_][\w.]* [A-Za-z_]\w*$/.test(name)) broken(`data.pkl names the global ${quoted(name)}, which is no Python name (a damaged file)`);
  const dtype = STORAGE_TYPES[name];
  if (dtype) return { kind: 'storage-type', dtype };
  if (CALLABLES.has(name)) return { kind: 'global', name };
  if (/^torch [A-Za-z]*Storage$/.test(name)) broken(`data.pkl holds a ${name.slice(6)}: only float32, float16, bfloat16 and float64 weights are imported`);
  return broken(`data.pkl refers to the Python global '${name.replace(' ', '.')}': only tensors, dicts and numbers are read, and a checkpoint that needs other code is refused`);
}

function count(v: Value | undefined): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** ('storage', FloatStorage, key, location, numel): the persistent id torch.save gives each storage. */
function storage(pid: Value, broken: (why: string) => never): StorageRef {
  const items = pid instanceof Tuple ? pid.items : [];
  const [tag, type, key, , size] = items;
  if (items.length !== 5 || tag !== 'storage' || typeof type !== 'object' || type === null || !('kind' in type) || type.kind !== 'storage-type' || typeof key !== 'string' || !count(size)) {
    broken(`data.pkl refers to a persistent object that is not a torch storage`);
  }
  return { kind: 'storage', key: key as string, dtype: (type as { dtype: SourceDType }).dtype, numel: size as number };
}

function call(callable: Value, args: Value, broken: (why: string) => never): Value {
  if (typeof callable !== 'object' || callable === null || !('kind' in callable) || callable.kind !== 'global') broken(`data.pkl calls a ${describe(callable)}`);
  if (!(args instanceof Tuple)) broken('data.pkl calls a global with arguments that are not a tuple');
  const a = (args as Tuple).items;
  switch ((callable as Callable).name) {
    case 'collections OrderedDict':
      if (a.length !== 0) broken('data.pkl builds an OrderedDict from arguments');
      return new Map();
    case 'torch._utils _rebuild_parameter':
      if (a.length < 1 || typeof a[0] !== 'object' || a[0] === null || !('kind' in a[0]) || a[0].kind !== 'tensor') broken('data.pkl builds a parameter from something other than a tensor');
      return a[0]!;
    default: {
      // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
      const [store, offset, size, stride] = a;
      const ints = (t: Value | undefined): number[] | undefined => (t instanceof Tuple && t.items.every(count) ? (t.items as number[]) : undefined);
      const shape = ints(size);
      const strides = ints(stride);
      if (a.length < 4 || typeof store !== 'object' || store === null || !('kind' in store) || store.kind !== 'storage' || !count(offset) || !shape || !strides || shape.length !== strides.length) {
        broken('data.pkl rebuilds a tensor from arguments that are not (storage, offset, shape, strides)');
      }
      return { kind: 'tensor', storage: store as StorageRef, offset: offset as number, shape: shape!, stride: strides! };
    }
  }
}

/** The elements a view reads, in row-major order of its shape, as indices into its storage. */
function viewIndices(t: TensorRef): { first: number; last: number; contiguous: boolean } {
  let last = t.offset;
  let contiguous = true;
  let expected = 1;
  for (let d = t.shape.length - 1; d >= 0; d--) {
    if (t.shape[d]! > 1 && t.stride[d] !== expected) contiguous = false;
    expected *= t.shape[d]!;
    last += (t.shape[d]! - 1) * t.stride[d]!;
  }
  return { first: t.offset, last, contiguous };
}

/**
 * A PyTorch checkpoint's tensors: the top-level dict's tensor values, or those of its dict
 * under `key` (BlackMamba's {"model": state_dict}). Values that are not tensors are refused,
 * naming them; nothing is read until a tensor's read().
 */
export function readTorchCheckpoint(path: string, key?: string): TensorSource {
  const broken = (why: string): never => {
    throw new MambalabError(`import: ${path} is not a PyTorch checkpoint mambalab can read: ${why}`);
  };
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    throw new MambalabError(`import: cannot read ${path}`);
  }
  let entries: Map<string, ZipEntry>;
  let root: Value;
  let prefix: string;
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) broken('it is not a file');
    if (stat.size < 22) broken(`it is ${stat.size} bytes long, too short for a zip archive`);
    const magic = readBytes(fd, 0, 4, broken);
    if (magic.readUInt32LE(0) !== 0x04034b50) {
      broken(magic[0] === 0x80 ? 'it is in the legacy format of PyTorch before 1.6; re-save it with torch.save from a newer PyTorch (or as safetensors)' : 'it is not a zip archive (torch.save writes one since PyTorch 1.6)');
    }
    entries = readZipDirectory(fd, stat.size, broken);
    const pickles = [...entries.keys()].filter((name) => /^[^/]+\/data\.pkl$/.test(name));
    if (pickles.length !== 1) broken(pickles.length ? `it holds ${pickles.length} data.pkl records` : 'it holds no data.pkl record');
    prefix = pickles[0]!.slice(0, -'data.pkl'.length);
    const order = entries.get(`${prefix}byteorder`);
    if (order && readBytes(fd, order.offset, Math.min(order.size, 16), broken).toString() !== 'little') broken('its storages are big-endian');
    const pickle = entries.get(pickles[0]!)!;
    root = unpickle(readBytes(fd, pickle.offset, pickle.size, broken), broken);
  } catch (error) {
    closeSync(fd);
    throw error;
  }
  closeSync(fd);

  let dict = root;
  if (key !== undefined) {
    if (!(root instanceof Map) || !root.has(key)) broken(`it holds ${root instanceof Map ? `a dict of ${[...root.keys()].slice(0, 8).map(quoted).join(', ')}` : `a ${describe(root)}`}, with no '${key}' entry`);
    dict = (root as Map<string, Value>).get(key)!;
  }
  if (!(dict instanceof Map)) return broken(`it holds a ${describe(dict)}, not a dict of tensors (a state_dict)`);
  const tensors = new Map<string, SourceTensor>();
  for (const [name, value] of dict) {
    if (typeof value !== 'object' || value === null || !('kind' in value) || value.kind !== 'tensor') broken(`entry ${quoted(name)} is a ${describe(value)}, not a tensor`);
    tensors.set(name, sourceTensor(path, prefix, entries, name, value as TensorRef, broken));
  }
  return { file: path, tensors };
}

function sourceTensor(path: string, prefix: string, entries: Map<string, ZipEntry>, name: string, t: TensorRef, broken: (why: string) => never): SourceTensor {
  const { dtype, key } = t.storage;
  const bytes = ELEMENT_BYTES[dtype];
  const entry = entries.get(`${prefix}data/${key}`);
  if (!entry) broken(`tensor ${shortName(name)}'s storage ${shortName(key)} is missing from the archive (truncated?)`);
  if (entry!.size < t.storage.numel * bytes) broken(`tensor ${shortName(name)}'s storage ${shortName(key)} holds ${entry!.size} bytes, less than its ${t.storage.numel} ${dtype} values (truncated?)`);
  const n = numel(t.shape);
  const { first, last, contiguous } = viewIndices(t);
  if (n > 0 && last >= t.storage.numel) broken(`tensor ${shortName(name)} (shape [${t.shape}], offset ${t.offset}, strides [${t.stride}]) reaches past its storage of ${t.storage.numel} values`);
  return {
    name,
    dtype,
    shape: t.shape,
    storage: `storage ${shortName(key)} of ${path}`,
    read() {
      if (n === 0) return new Float32Array(0);
      const fd = openSync(path, 'r');
      let span: Float32Array;
      try {
        span = decodeFloats(readBytes(fd, entry!.offset + first * bytes, (last - first + 1) * bytes, broken), dtype);
      } finally {
        closeSync(fd);
      }
      if (contiguous) return checkFinite(span, name, path);
      // A strided view (a transposed tensor saved as it was): gather it in row-major order.
      const out = new Float32Array(n);
      const index = new Array<number>(t.shape.length).fill(0);
      for (let i = 0; i < n; i++) {
        let at = 0;
        for (let d = 0; d < index.length; d++) at += index[d]! * t.stride[d]!;
        out[i] = span[at]!;
        for (let d = index.length - 1; d >= 0 && ++index[d]! === t.shape[d]; d--) index[d] = 0;
      }
      return checkFinite(out, name, path);
    },
  };
}
