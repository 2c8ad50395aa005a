// What an importer reads: named tensors of a published checkpoint, whatever file holds them
// (safetensors, PyTorch's zip), each read on demand and converted to float32 (mambalab's
// weights), so a checkpoint of many GiB is never whole in memory.
import { MambalabError } from '../../errors.js';
import { firstNonFinite } from '../safetensors.js';

export type SourceDType = 'F32' | 'F16' | 'BF16' | 'F64';

export const ELEMENT_BYTES: Record<SourceDType, number> = { F32: 4, F16: 2, BF16: 2, F64: 8 };

export interface SourceTensor {
  name: string;
  dtype: SourceDType;
  shape: number[];
  /** Where the bytes come from ("storage 3 of pytorch_model.bin"), to tell tied tensors apart from copies. */
  storage: string;
  /** The values as float32; throws a MambalabError naming the tensor and file if they cannot be read or are not finite. */
  read(): Float32Array;
}

/** A checkpoint's tensors by name, and the file (or files) they came from, for messages. */
export interface TensorSource {
  file: string;
  tensors: Map<string, SourceTensor>;
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** IEEE half precision to float32 (subnormals, infinities and NaN included). */
function halfToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 0x1f) return fraction ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

/** Little-endian elements of `dtype` in `bytes` as float32 (bf16 and f16 exactly, f64 rounded). */
export function decodeFloats(bytes: Uint8Array, dtype: SourceDType): Float32Array {
  const n = bytes.length / ELEMENT_BYTES[dtype];
  // Copy into an aligned buffer: data inside a file need not be aligned for its dtype.
  const aligned = new Uint8Array(bytes.length);
  aligned.set(bytes);
  switch (dtype) {
    case 'F32':
      return new Float32Array(aligned.buffer);
    case 'F64':
      return Float32Array.from(new Float64Array(aligned.buffer));
    case 'BF16': {
      const halves = new Uint16Array(aligned.buffer);
      const words = new Uint32Array(n);
      for (let i = 0; i < n; i++) words[i] = halves[i]! << 16;
      return new Float32Array(words.buffer);
    }
    case 'F16': {
      const halves = new Uint16Array(aligned.buffer);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = halfToFloat(halves[i]!);
      return out;
    }
  }
}

/** A name read from a file, cut short for a message (a damaged file can hold any bytes there). */
export function shortName(name: string): string {
  return name.length > 80 ? `${name.slice(0, 80)}…` : name;
}

/** Refuses values that are not finite, naming the tensor and file (loadModel would refuse them too). */
export function checkFinite(values: Float32Array, name: string, file: string): Float32Array {
  const bad = firstNonFinite(values);
  if (bad >= 0) throw new MambalabError(`import: tensor ${shortName(name)} in ${file} holds ${values[bad]} at index ${bad}`);
  return values;
}
