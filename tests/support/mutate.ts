// Damage for fuzz tests: valid bytes or JSON in, a damaged copy and a line saying what was done
// out. Every choice comes from the seeded generator given, so a case replays exactly.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';

import { SeededRandom } from '../../kernel/src/data/random.js';

export type Random = SeededRandom;

export interface Mutation<T = Buffer> {
  /** What was done, for the failure message ("bit flips at 12, 40"). */
  what: string;
  value: T;
}

/** A little-endian unsigned length field of a format (safetensors' header length, Arrow's metadata sizes). */
export interface LengthField {
  name: string;
  offset: number;
  bytes: 4 | 8;
}

export function pick<T>(rand: Random, items: readonly T[]): T {
  return items[rand.int(items.length)]!;
}

function randomBytes(rand: Random, n: number): Buffer {
  return Buffer.from(Array.from({ length: n }, () => rand.int(256)));
}

/** A small size, mostly a few bytes, now and then a few hundred. */
function span(rand: Random, limit: number): number {
  return Math.max(1, Math.min(limit, rand.next() < 0.8 ? 1 + rand.int(8) : 1 + rand.int(512)));
}

// Values a length field is set to: past the end, at the 2^32 and 2^53 edges, all ones.
const HUGE_LENGTHS = [0n, 1n, 2n ** 31n - 1n, 2n ** 31n, 2n ** 32n - 1n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 1n];

function writeLength(bytes: Buffer, field: LengthField, value: bigint): void {
  if (field.bytes === 8) bytes.writeBigUInt64LE(value & (2n ** 64n - 1n), field.offset);
  else bytes.writeUInt32LE(Number(value & 0xffffffffn), field.offset);
}

/** One random kind of damage to bytes; `fields` adds absurd values in the format's length fields. */
export function mutateBytes(rand: Random, original: Buffer, fields: readonly LengthField[] = []): Mutation {
  const bytes = Buffer.from(original);
  const n = bytes.length;
  const at = rand.int(n + 1);
  const kinds = ['truncate', 'bit flips', 'insert', 'delete', 'zero', 'overwrite', 'random bytes', 'wrong magic', 'empty', 'duplicate'];
  if (fields.length > 0) kinds.push('length field', 'length field', 'length field');
  const kind = pick(rand, kinds);
  switch (kind) {
    case 'truncate':
      return { what: `truncated to ${at} of ${n} bytes`, value: bytes.subarray(0, at) };
    case 'bit flips': {
      const flips = Array.from({ length: 1 + rand.int(8) }, () => rand.int(Math.max(1, n * 8)));
      for (const bit of flips) if (n > 0) bytes[bit >> 3]! ^= 1 << (bit & 7);
      return { what: `bits flipped at ${flips.map((b) => `${b >> 3}.${b & 7}`).join(', ')}`, value: bytes };
    }
    case 'insert': {
      const k = span(rand, 4096);
      return { what: `${k} random bytes inserted at ${at}`, value: Buffer.concat([bytes.subarray(0, at), randomBytes(rand, k), bytes.subarray(at)]) };
    }
    case 'delete': {
      const k = span(rand, n - at);
      return { what: `${k} bytes deleted at ${at}`, value: Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + k)]) };
    }
    case 'zero': {
      const k = span(rand, n - at);
      bytes.fill(0, at, Math.min(n, at + k));
      return { what: `${k} bytes zeroed at ${at}`, value: bytes };
    }
    case 'overwrite': {
      const k = span(rand, n - at);
      randomBytes(rand, k).copy(bytes, at);
      return { what: `${k} bytes overwritten at ${at}`, value: bytes.subarray(0, n) };
    }
    case 'random bytes': {
      const k = rand.int(2 * n + 16);
      return { what: `${k} random bytes`, value: randomBytes(rand, k) };
    }
    case 'wrong magic': {
      randomBytes(rand, Math.min(n, 8)).copy(bytes, 0);
      return { what: 'first 8 bytes replaced', value: bytes };
    }
    case 'empty':
      return { what: 'empty', value: Buffer.alloc(0) };
    case 'duplicate': {
      const k = span(rand, n - at);
      return { what: `${k} bytes at ${at} repeated`, value: Buffer.concat([bytes.subarray(0, at + k), bytes.subarray(at)]) };
    }
    default: {
      const field = pick(rand, fields);
      const value = rand.next() < 0.5 ? pick(rand, HUGE_LENGTHS) : BigInt(n + rand.int(4096)) - BigInt(rand.int(64));
      if (field.offset + field.bytes <= n) writeLength(bytes, field, value < 0n ? 0n : value);
      return { what: `${field.name} set to ${value}`, value: bytes };
    }
  }
}

// What a JSON value is replaced with: every type, the edges of numbers, empty and odd strings.
const ODD_VALUES: unknown[] = [null, true, false, 0, -1, 1, 0.5, -0.5, 1e308, -1e308, 2 ** 53 + 2, 4294967297, '', 'x', '-1', 'NaN', '\u0000', [], [null], [1, 2, 3], {}, { a: 1 }];

type Key = string | number;

/**
 * A random place in a JSON value, as the keys from the root: each step goes into a random child,
 * or stops there with probability `stop` (always at a leaf), so every depth gets its share.
 */
function randomPath(rand: Random, root: unknown, stop: number): Key[] {
  const path: Key[] = [];
  for (let node = root; node !== null && typeof node === 'object' && rand.next() >= stop; ) {
    const keys: Key[] = Array.isArray(node) ? node.map((_, i) => i) : Object.keys(node);
    if (keys.length === 0) break;
    const key = pick(rand, keys);
    path.push(key);
    node = (node as Record<Key, unknown>)[key];
  }
  return path;
}

function valueAt(root: unknown, path: readonly Key[]): unknown {
  return path.reduce<unknown>((node, key) => (node as Record<Key, unknown>)[key], root);
}

/** Replaces (or with `value` undefined, removes) what is at `path`; returns the new root. */
function setAt(root: unknown, path: readonly Key[], value: unknown): unknown {
  if (path.length === 0) return value;
  const parent = valueAt(root, path.slice(0, -1)) as Record<Key, unknown>;
  const key = path.at(-1)!;
  if (value !== undefined) parent[key] = value;
  else if (Array.isArray(parent)) parent.splice(Number(key), 1);
  else delete parent[key];
  return root;
}

/**
 * One random kind of damage to a JSON document: valid JSON of the wrong shape (a value of the
 * wrong type, a key dropped or added, a number at an edge) or its text's bytes damaged (`text`,
 * the document as its file holds it, or else as JSON.stringify indents it).
 */
export function mutateJson(rand: Random, document: unknown, text?: string): Mutation<Buffer> {
  const kind = pick(rand, ['bytes', 'bytes', 'wrong value', 'wrong value', 'wrong value', 'drop key', 'add key', 'number edge']);
  if (kind === 'bytes') return mutateBytes(rand, Buffer.from(text ?? JSON.stringify(document, null, 2)));
  let root: unknown = structuredClone(document);
  let path = randomPath(rand, root, kind === 'number edge' ? 0 : 0.25);
  let what: string;
  if (kind === 'drop key' && path.length > 0) {
    root = setAt(root, path, undefined);
    what = 'removed';
  } else if (kind === 'add key') {
    while (valueAt(root, path)?.constructor !== Object && path.length > 0) path = path.slice(0, -1);
    const value = pick(rand, ODD_VALUES);
    const object = valueAt(root, path);
    if (object?.constructor === Object) (object as Record<string, unknown>)['unexpected'] = value;
    what = `gained "unexpected": ${JSON.stringify(value)}`;
  } else if (kind === 'number edge' && typeof valueAt(root, path) === 'number') {
    const value = pick(rand, [-1, -0.5, 0, 1e308, 2 ** 31, 2 ** 53 + 2, 1.5]);
    root = setAt(root, path, value);
    what = `set to ${value}`;
  } else {
    const value = pick(rand, ODD_VALUES);
    root = setAt(root, path, value);
    what = `set to ${JSON.stringify(value)}`;
  }
  return { what: `JSON ${path.length === 0 ? 'the document' : path.join('.')} ${what}`, value: Buffer.from(JSON.stringify(root)) };
}

/** Damage to a safetensors file: its bytes, its header length, or its JSON header made the wrong shape (its length kept right). */
export function mutateSafetensors(rand: Random, bytes: Buffer): Mutation {
  if (rand.next() < 0.6) return mutateBytes(rand, bytes, [{ name: 'the header length', offset: 0, bytes: 8 }]);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header: unknown = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8'));
  const { what, value } = mutateJson(rand, header, JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(value.length));
  return { what: `header: ${what}`, value: Buffer.concat([length, value, bytes.subarray(8 + headerLength)]) };
}

/**
 * Damage to a PyTorch checkpoint (a zip of stored entries): its bytes with absurd values in the
 * zip's length and offset fields, or damage confined to data.pkl's bytes (`pickle`, its byte
 * range), which leaves the archive whole for the pickle machine to meet.
 */
export function mutateTorchZip(rand: Random, bytes: Buffer, pickle: { offset: number; size: number }): Mutation {
  if (rand.next() < 0.5) return mutateBytes(rand, bytes, zipLengthFields(bytes));
  const inner = mutateBytes(rand, bytes.subarray(pickle.offset, pickle.offset + pickle.size));
  const value = Buffer.from(bytes);
  inner.value.copy(value, pickle.offset, 0, Math.min(inner.value.length, pickle.size));
  return { what: `data.pkl ${inner.what} (its length kept)`, value };
}

/** The end-of-directory record's count, size and offset, and each directory entry's sizes and offset. */
function zipLengthFields(bytes: Buffer): LengthField[] {
  const fields: LengthField[] = [];
  const eocd = bytes.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (eocd >= 0 && eocd + 22 <= bytes.length) {
    fields.push({ name: 'the directory size', offset: eocd + 12, bytes: 4 }, { name: 'the directory offset', offset: eocd + 16, bytes: 4 });
  }
  const central = Buffer.from([0x50, 0x4b, 0x01, 0x02]);
  for (let at = bytes.indexOf(central); at >= 0 && at + 46 <= bytes.length; at = bytes.indexOf(central, at + 4)) {
    fields.push({ name: `an entry's size at ${at}`, offset: at + 24, bytes: 4 }, { name: `an entry's offset at ${at}`, offset: at + 42, bytes: 4 });
  }
  return fields;
}

/**
 * The length fields of an Arrow IPC file: each message's metadata size (after its 0xFFFFFFFF
 * continuation marker) and the footer's size (before the closing magic).
 */
export function arrowLengthFields(bytes: Buffer): LengthField[] {
  const fields: LengthField[] = [];
  const continuation = Buffer.from([255, 255, 255, 255]);
  for (let at = bytes.indexOf(continuation); at >= 0; at = bytes.indexOf(continuation, at + 4)) {
    fields.push({ name: `the message length at ${at + 4}`, offset: at + 4, bytes: 4 });
  }
  if (bytes.length >= 10) fields.push({ name: 'the footer length', offset: bytes.length - 10, bytes: 4 });
  return fields;
}

/** Writes the mutation's bytes to `path`; now and then removes the file or puts a directory there instead. */
export function writeMutated(rand: Random, path: string, mutation: () => Mutation): string {
  rmSync(path, { recursive: true, force: true });
  const odd = rand.next();
  if (odd < 0.02) return 'the file removed';
  if (odd < 0.05) {
    mkdirSync(path);
    return 'a directory in place of the file';
  }
  const { what, value } = mutation();
  writeFileSync(path, value);
  return what;
}
