// Hugging Face checkpoints' weights: model.safetensors, or shards listed by
// model.safetensors.index.json, in float32, float16, bfloat16 or float64.
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { MambalabError } from '../../errors.js';
import { readSafetensorsLayout } from '../safetensors.js';
import { checkFinite, decodeFloats, ELEMENT_BYTES, shortName, type SourceDType, type SourceTensor, type TensorSource } from './source.js';
import { readBytes } from './zip.js';

export const SAFETENSORS_FILE = 'model.safetensors';
export const SAFETENSORS_INDEX = 'model.safetensors.index.json';

function readFile(path: string, into: Map<string, SourceTensor>): void {
  const { entries } = readSafetensorsLayout(path, ELEMENT_BYTES);
  for (const { name, dtype, shape, begin, end } of entries) {
    if (into.has(name)) throw new MambalabError(`import: tensor ${shortName(name)} appears in two shards (the second in ${path})`);
    into.set(name, {
      name,
      dtype: dtype as SourceDType,
      shape,
      storage: `bytes ${begin} to ${end} of ${path}`,
      read() {
        const fd = openSync(path, 'r');
        try {
          const bytes = readBytes(fd, begin, end - begin, (why) => {
            throw new MambalabError(`import: tensor ${shortName(name)} in ${path} cannot be read: ${why}`);
          });
          return checkFinite(decodeFloats(bytes, dtype as SourceDType), name, path);
        } finally {
          closeSync(fd);
        }
      },
    });
  }
}

/** The tensors of `dir`'s model.safetensors, or of the shards its index names. */
export function readSafetensorsSource(dir: string): TensorSource {
  const tensors = new Map<string, SourceTensor>();
  const single = join(dir, SAFETENSORS_FILE);
  if (existsSync(single)) {
    readFile(single, tensors);
    return { file: single, tensors };
  }
  const indexFile = join(dir, SAFETENSORS_INDEX);
  let index: unknown;
  try {
    index = JSON.parse(readFileSync(indexFile, 'utf8'));
  } catch (e) {
    throw new MambalabError(`import: cannot read ${indexFile} (${(e as Error).message})`);
  }
  const map = (index as { weight_map?: unknown } | null)?.weight_map;
  if (typeof map !== 'object' || map === null || Array.isArray(map) || !Object.values(map).every((f) => typeof f === 'string' && /^[^/\\]+\.safetensors$/.test(f))) {
    throw new MambalabError(`import: ${indexFile} has no weight_map of tensor names to shard files beside it`);
  }
  const shards = [...new Set(Object.values(map as Record<string, string>))];
  for (const shard of shards) readFile(join(dir, shard), tensors);
  for (const [name, shard] of Object.entries(map as Record<string, string>)) {
    if (!tensors.has(name)) throw new MambalabError(`import: ${indexFile} lists tensor ${shortName(name)} in ${shortName(shard)}, which does not hold it`);
  }
  return { file: indexFile, tensors };
}
