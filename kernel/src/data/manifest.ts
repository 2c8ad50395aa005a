// dataset.json: what a prepared dataset holds and where it came from. Written last by
// `prepare`, so a folder with one is complete.
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { MambalabError } from '../errors.js';
import { shaped, type Shape } from '../json-shape.js';

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

const SHAPE: Shape = {
  format: 'string',
  source: 'string',
  license: 'string',
  tokenizer: 'string',
  vocabSize: 'count',
  endOfText: 'count',
  documents: 'count',
  tokens: 'count',
  textBytes: 'count',
  shards: [{ file: 'string', documents: 'count', tokens: 'count' }],
  inputs: [{ path: 'string', bytes: 'count', sha256: 'string', lines: 'count', documents: 'count' }],
  'sets?': { '*': { documents: 'count', tokens: 'count' } },
  'setsFilter?': ['string'],
  skipped: { count: 'count', examples: ['string'] },
  blankLines: 'count',
  filtered: 'count',
  created: 'string',
};

// Token ids are stored as Uint16.
const MAX_VOCABULARY = 1 << 16;

export function isPrepared(dir: string): boolean {
  return existsSync(join(dir, MANIFEST_FILE));
}

export function readManifest(dir: string): DatasetManifest {
  const file = join(dir, MANIFEST_FILE);
  if (!existsSync(file)) {
    throw new MambalabError(`${dir} is not a prepared dataset (no ${MANIFEST_FILE}): make one with 'mambalab data prepare --input <files> --out ${dir}'`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new MambalabError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  const format = (parsed as { format?: unknown } | null)?.format;
  if (format !== FORMAT) throw new MambalabError(`${file}: format '${String(format)}', expected '${FORMAT}'`);
  const manifest = shaped<DatasetManifest>(file, parsed, SHAPE);
  const wrong = (why: string): never => {
    throw new MambalabError(`${file}: ${why}: the dataset is damaged; prepare it again`);
  };
  if (manifest.vocabSize < 1 || manifest.vocabSize > MAX_VOCABULARY) wrong(`vocabSize ${manifest.vocabSize} is outside [1, ${MAX_VOCABULARY}]`);
  if (manifest.endOfText >= manifest.vocabSize) wrong(`endOfText ${manifest.endOfText} is outside the vocabulary of ${manifest.vocabSize}`);
  const bad = manifest.shards.find((s) => !/^[^/\\]+\.arrow$/.test(s.file));
  if (bad) wrong(`shard '${bad.file}' is not the name of an .arrow file in the dataset's folder`);
  for (const key of ['documents', 'tokens'] as const) {
    const sum = manifest.shards.reduce((n, s) => n + s[key], 0);
    if (sum !== manifest[key]) wrong(`its shards hold ${sum} ${key}, but it says ${manifest[key]} in all`);
  }
  return manifest;
}

export function writeManifest(dir: string, manifest: Omit<DatasetManifest, 'format'>): void {
  const temporary = join(dir, `${MANIFEST_FILE}.tmp`);
  writeFileSync(temporary, JSON.stringify({ format: FORMAT, ...manifest }, null, 2) + '\n');
  renameSync(temporary, join(dir, MANIFEST_FILE));
}
