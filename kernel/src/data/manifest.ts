// dataset.json: what a prepared dataset holds and where it came from. Written last by
// `prepare`, so a folder with one is complete.
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { MambalabError } from '../errors.js';

export const MANIFEST_FILE = 'dataset.json';
const FORMAT = 'mambalab-tokens/1';

export interface InputFile {
  path: string;
  bytes: number;
  sha256: string;
  lines: number;
  documents: number;
}

export interface DatasetManifest {
  format: typeof FORMAT;
  source: string;
  license: string;
  /** The tokenizer that made the ids (corpus/tokenizer.ts names them: gpt2, neox). */
  tokenizer: string;
  vocabSize: number;
  endOfText: number;
  documents: number;
  tokens: number;
  /** UTF-8 bytes of the documents' text. */
  textBytes: number;
  shards: { file: string; documents: number; tokens: number }[];
  inputs: InputFile[];
  /** Documents and tokens per SlimPajama set, when the source names sets. */
  sets?: Record<string, { documents: number; tokens: number }>;
  /** The --sets filter, when one was given. */
  setsFilter?: string[];
  /** Bad records skipped (--on-bad-record skip), with the first few as "file:line: reason". */
  skipped: { count: number; examples: string[] };
  blankLines: number;
  /** Documents the --sets filter left out. */
  filtered: number;
  created: string;
}

export function isPrepared(dir: string): boolean {
  return existsSync(join(dir, MANIFEST_FILE));
}

export function readManifest(dir: string): DatasetManifest {
  const file = join(dir, MANIFEST_FILE);
  if (!existsSync(file)) {
    throw new MambalabError(`${dir} is not a prepared dataset (no ${MANIFEST_FILE}): make one with 'mambalab data prepare --input <files> --out ${dir}'`);
  }
  let manifest: DatasetManifest;
  try {
    manifest = JSON.parse(readFileSync(file, 'utf8')) as DatasetManifest;
  } catch (e) {
    throw new MambalabError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  if (manifest.format !== FORMAT) throw new MambalabError(`${file}: format '${String(manifest.format)}', expected '${FORMAT}'`);
  return manifest;
}

export function writeManifest(dir: string, manifest: Omit<DatasetManifest, 'format'>): void {
  const temporary = join(dir, `${MANIFEST_FILE}.tmp`);
  writeFileSync(temporary, JSON.stringify({ format: FORMAT, ...manifest }, null, 2) + '\n');
  renameSync(temporary, join(dir, MANIFEST_FILE));
}
