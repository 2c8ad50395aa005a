// The safetensors format: an 8-byte little-endian header length, a JSON header naming each
// tensor's dtype, shape and byte range, then the raw little-endian data.
// Files are written to a temporary name and renamed, so a crash never leaves half a file
// where a good one was. It lives with the models (their weights' format), below train, so the
// trainer's optimizer state reads and writes it too without models importing train.
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';

import { MambalabError } from '../errors.js';

export type FloatArray = Float32Array | Float64Array;

export interface NamedTensor {
  name: string;
  shape: number[];
  data: FloatArray;
}

const DTYPES = { F32: Float32Array, F64: Float64Array } as const;
type FileDType = keyof typeof DTYPES;

function fileDType(data: FloatArray): FileDType {
  return data instanceof Float64Array ? 'F64' : 'F32';
}

export function writeSafetensors(path: string, tensors: NamedTensor[], metadata: Record<string, string> = {}): void {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const t of tensors) {
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (numel !== t.data.length) throw new Error(`safetensors: ${t.name} has ${t.data.length} values for shape [${t.shape}]`);
    header[t.name] = { dtype: fileDType(t.data), shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8); // keeps the data 8-byte aligned
  const headerBytes = Buffer.from(json, 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(headerBytes.length));

  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, prefix);
    writeSync(fd, headerBytes);
    for (const t of tensors) writeSync(fd, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

export interface SafetensorsFile {
  metadata: Record<string, string>;
  tensors: Map<string, NamedTensor>;
}

export function readSafetensors(path: string): SafetensorsFile {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch {
    throw new MambalabError(`checkpoint: cannot read ${path}`);
  }
  const broken = (why: string): never => {
    throw new MambalabError(`checkpoint: ${path} is not a valid safetensors file: ${why}`);
  };
  if (bytes.length < 8) broken(`it is ${bytes.length} bytes long, shorter than the 8-byte header length`);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  if (headerLength > bytes.length - 8) broken(`the header claims ${headerLength} bytes but the file has ${bytes.length - 8} after the length (truncated?)`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8')) as Record<string, unknown>;
  } catch {
    return broken('its JSON header does not parse');
  }
  const dataStart = 8 + headerLength;
  const dataLength = bytes.length - dataStart;
  const tensors = new Map<string, NamedTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = entry as Record<string, string>;
      continue;
    }
    const { dtype, shape, data_offsets: offsets } = entry as { dtype: string; shape: number[]; data_offsets: [number, number] };
    if (!(dtype in DTYPES)) broken(`tensor ${name} has dtype ${dtype}; this engine reads F32 and F64`);
    const Ctor = DTYPES[dtype as FileDType];
    const [begin, end] = offsets;
    if (end > dataLength) broken(`tensor ${name} ends at byte ${end} of the data, which holds ${dataLength} bytes (truncated?)`);
    const numel = shape.reduce((a, b) => a * b, 1);
    if (end - begin !== numel * Ctor.BYTES_PER_ELEMENT) broken(`tensor ${name} has ${end - begin} bytes for shape [${shape}] of ${dtype}`);
    // Copy into an aligned buffer: offsets inside the file need not be aligned for this dtype.
    const data = new Ctor(numel);
    new Uint8Array(data.buffer).set(bytes.subarray(dataStart + begin, dataStart + end));
    tensors.set(name, { name, shape, data });
  }
  return { metadata, tensors };
}
