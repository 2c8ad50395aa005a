// The safetensors format: an 8-byte little-endian header length, a JSON header naming each
// tensor's dtype, shape and byte range, then the raw little-endian data.
// Files are written to a temporary name and renamed, so a crash never leaves half a file
// where a good one was. It lives with the models (their weights' format), below train, so the
// trainer's optimizer state reads and writes it too without models importing train.
// Paper-sized models make files of many GiB: they are written one tensor at a time (a
// LazyTensor is read only when its turn comes) and read with positioned reads, never whole
// (Node reads no file over 2 GiB in one piece).
import { closeSync, fstatSync, fsyncSync, openSync, readSync, renameSync, rmSync } from 'node:fs';

import { MambalabError } from '../errors.js';
import { writeAll } from '../files.js';

export type FloatArray = Float32Array | Float64Array;

export interface NamedTensor {
  name: string;
  shape: number[];
  data: FloatArray;
}

/** A tensor whose values are read when the writer reaches it. */
export interface LazyTensor {
  name: string;
  shape: number[];
  dtype: FileDType;
  read(): FloatArray;
}

const DTYPES = { F32: Float32Array, F64: Float64Array } as const;
export type FileDType = keyof typeof DTYPES;

function fileDType(data: FloatArray): FileDType {
  return data instanceof Float64Array ? 'F64' : 'F32';
}

function numelOf(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * The index of the first NaN or infinity in `values`, or -1. A plain loop: a checkpoint holds
 * billions of values, and findIndex's callback costs about 8× as much per value.
 */
export function firstNonFinite(values: FloatArray): number {
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v - v !== 0) return i; // NaN − NaN and ∞ − ∞ are NaN; every finite v − v is 0
  }
  return -1;
}

function lazy(t: NamedTensor | LazyTensor): LazyTensor {
  if ('read' in t) return t;
  if (numelOf(t.shape) !== t.data.length) throw new Error(`safetensors: ${t.name} has ${t.data.length} values for shape [${t.shape}]`);
  return { name: t.name, shape: t.shape, dtype: fileDType(t.data), read: () => t.data };
}

/** Writes the tensors in order (a LazyTensor is read when its turn comes); fsynced, then renamed into place. */
export function writeSafetensors(path: string, given: Array<NamedTensor | LazyTensor>, metadata: Record<string, string> = {}): void {
  const tensors = given.map(lazy);
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const t of tensors) {
    const bytes = numelOf(t.shape) * DTYPES[t.dtype].BYTES_PER_ELEMENT;
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8); // keeps the data 8-byte aligned
  const headerBytes = Buffer.from(json, 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(headerBytes.length));

  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    writeAll(fd, prefix);
    writeAll(fd, headerBytes);
    for (const t of tensors) {
      const data = t.read();
      if (data.length !== numelOf(t.shape) || fileDType(data) !== t.dtype) {
        throw new Error(`safetensors: ${t.name} read ${data.length} ${fileDType(data)} values for shape [${t.shape}] of ${t.dtype}`);
      }
      writeAll(fd, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    }
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw error;
  }
  closeSync(fd);
  renameSync(tmp, path);
}

export interface SafetensorsFile {
  metadata: Record<string, string>;
  tensors: Map<string, NamedTensor>;
}

/** Fills `into` from the file at `position`. */
function readAt(fd: number, path: string, into: Uint8Array, position: number): void {
  for (let at = 0; at < into.length; ) {
    const n = readSync(fd, into, at, into.length - at, position + at);
    if (n === 0) throw new MambalabError(`checkpoint: ${path} ended at byte ${position + at} while being read (was it being rewritten?)`);
    at += n;
  }
}

export function readSafetensors(path: string): SafetensorsFile {
  return withFile(path, (fd) => {
    const { metadata, dataStart, entries } = readLayout(fd, path, ELEMENT_BYTES);
    const tensors = new Map<string, NamedTensor>();
    for (const { name, dtype, shape, begin, end } of entries) {
      const Ctor = DTYPES[dtype as FileDType];
      // Read into an aligned buffer: offsets inside the file need not be aligned for this dtype.
      const data = new Ctor((end - begin) / Ctor.BYTES_PER_ELEMENT);
      readAt(fd, path, new Uint8Array(data.buffer), dataStart + begin);
      const bad = firstNonFinite(data);
      if (bad >= 0) broken(path, `tensor ${name} holds ${data[bad]} at index ${bad} (damaged data, or weights saved after training diverged)`);
      tensors.set(name, { name, shape, data });
    }
    return { metadata, tensors };
  });
}

/**
 * A safetensors file's layout without its data, for readers of other dtypes (imported
 * checkpoints in bf16 or f16): each tensor's dtype (one of `elementBytes`' keys), shape and
 * absolute byte range, checked as readSafetensors checks them.
 */
export function readSafetensorsLayout(path: string, elementBytes: Readonly<Record<string, number>>): { metadata: Record<string, string>; entries: HeaderEntry[] } {
  return withFile(path, (fd) => {
    const { metadata, dataStart, entries } = readLayout(fd, path, elementBytes);
    return { metadata, entries: entries.map((e) => ({ ...e, begin: dataStart + e.begin, end: dataStart + e.end })) };
  });
}

const ELEMENT_BYTES = { F32: 4, F64: 8 };

function withFile<T>(path: string, use: (fd: number) => T): T {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    throw new MambalabError(`checkpoint: cannot read ${path}`);
  }
  try {
    return use(fd);
  } finally {
    closeSync(fd);
  }
}

function broken(path: string, why: string): never {
  throw new MambalabError(`checkpoint: ${path} is not a valid safetensors file: ${why}`);
}

function readLayout(fd: number, path: string, elementBytes: Readonly<Record<string, number>>): { metadata: Record<string, string>; dataStart: number; entries: HeaderEntry[] } {
  const stat = fstatSync(fd);
  if (!stat.isFile()) throw new MambalabError(`checkpoint: cannot read ${path} (not a file)`);
  const size = stat.size;
  const bad = (why: string): never => broken(path, why);
  if (size < 8) bad(`it is ${size} bytes long, shorter than the 8-byte header length`);
  const prefix = Buffer.alloc(8);
  readAt(fd, path, prefix, 0);
  const headerLength = prefix.readBigUInt64LE(0);
  if (headerLength > BigInt(size - 8)) bad(`the header claims ${headerLength} bytes but the file has ${size - 8} after the length (truncated?)`);
  const headerBytes = Buffer.alloc(Number(headerLength));
  readAt(fd, path, headerBytes, 8);
  let header: unknown;
  try {
    header = JSON.parse(headerBytes.toString('utf8'));
  } catch {
    return bad('its JSON header does not parse');
  }
  const dataStart = 8 + headerBytes.length;
  return { ...parseHeader(header, size - dataStart, bad, elementBytes), dataStart };
}

export interface HeaderEntry {
  name: string;
  dtype: string;
  shape: number[];
  begin: number;
  end: number;
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const isCount = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0;

/**
 * The header's metadata and tensor entries, every field checked: dtypes this engine reads,
 * shapes of counts, byte ranges that match their shapes and, as the format requires, fill the
 * data without gaps or overlaps (so a damaged file cannot pass for a smaller one).
 */
function parseHeader(header: unknown, dataLength: number, broken: (why: string) => never, elementBytes: Readonly<Record<string, number>>): { metadata: Record<string, string>; entries: HeaderEntry[] } {
  if (!isObject(header)) return broken(`its header is ${JSON.stringify(header)}, not a JSON object`);
  const metadata = header['__metadata__'] ?? {};
  if (!isObject(metadata) || !Object.values(metadata).every((v) => typeof v === 'string')) broken('its __metadata__ is not an object of strings');
  const entries: HeaderEntry[] = [];
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    if (!isObject(entry)) return broken(`tensor ${name} is described by ${JSON.stringify(entry)}, not an object`);
    const { dtype, shape, data_offsets: offsets } = entry;
    if (typeof dtype !== 'string' || !Object.hasOwn(elementBytes, dtype)) broken(`tensor ${name} has dtype ${JSON.stringify(dtype)}; this reader takes ${Object.keys(elementBytes).join(' and ')}`);
    if (!Array.isArray(shape) || !shape.every(isCount)) return broken(`tensor ${name} has shape ${JSON.stringify(shape)}, not a list of sizes`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount) || offsets[0]! > offsets[1]!) {
      return broken(`tensor ${name} has data_offsets ${JSON.stringify(offsets)}, not [begin, end] byte offsets`);
    }
    const [begin, end] = offsets as [number, number];
    if (end > dataLength) broken(`tensor ${name} ends at byte ${end} of the data, which holds ${dataLength} bytes (truncated?)`);
    if (end - begin !== numelOf(shape) * elementBytes[dtype as string]!) broken(`tensor ${name} has ${end - begin} bytes for shape [${shape}] of ${dtype}`);
    entries.push({ name, dtype: dtype as string, shape, begin, end });
  }
  let covered = 0;
  for (const { name, begin, end } of [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end)) {
    if (begin !== covered) broken(begin < covered ? `tensor ${name} overlaps another tensor's bytes` : `bytes ${covered} to ${begin} of the data belong to no tensor`);
    covered = end;
  }
  if (covered !== dataLength) broken(`bytes ${covered} to ${dataLength} of the data belong to no tensor (a damaged file, or one with extra bytes)`);
  return { metadata: metadata as Record<string, string>, entries };
}
