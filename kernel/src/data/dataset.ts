// A prepared dataset (the output of `mambalab data prepare`) opened for training: its shards
// are read into Buffers outside the V8 heap (Node cannot mmap; the JS heap never holds the
// corpus), documents are split into train and validation by a fixed hash of their index, and
// each split is sampled in seeded, resumable epochs of windows.
import { basename, join, resolve } from 'node:path';

import { MambalabError } from '../errors.js';
import { readManifest, type DatasetManifest } from './manifest.js';
import { hash32 } from './permutation.js';
import { readShard, type Shard } from './shards.js';
import type { BatchSampler, SamplerState, Split, TokenSource } from './source.js';
import { TokenStream, WindowSampler } from './windows.js';

export interface OpenDatasetOptions {
  /** Share of documents held out for validation (default 0.05). */
  validationFraction?: number;
}

export interface DatasetInfo {
  documents: number;
  tokens: number;
  tokenizer: string;
  shards: number;
}

// Fixed, so a dataset's split never changes between runs or machines.
const SPLIT_SALT = 0x2545f491;

export class Dataset implements TokenSource {
  readonly description: string;
  readonly vocabSize: number;
  private readonly splits: Record<Split, { stream: TokenStream; documents: number }>;

  constructor(
    readonly dir: string,
    readonly manifest: DatasetManifest,
    private readonly shards: Shard[],
    validationFraction: number,
  ) {
    this.vocabSize = manifest.vocabSize;
    this.description = `${basename(dir)} (${manifest.source}; ${manifest.tokenizer} tokens)`;
    this.splits = splitByDocument(shards, manifest.documents, validationFraction);
  }

  info(): DatasetInfo {
    const { documents, tokens, tokenizer, shards } = this.manifest;
    return { documents, tokens, tokenizer, shards: shards.length };
  }

  stats(split: Split): { tokens: number; documents: number } {
    const s = this.splits[split];
    return { tokens: s.stream.length, documents: s.documents };
  }

  /** The ids of document i (in input order), its end-of-text included: a view, not a copy. */
  document(i: number): Uint16Array {
    if (!Number.isInteger(i) || i < 0 || i >= this.manifest.documents) {
      throw new MambalabError(`${this.dir}: document ${i} is out of range (0 to ${this.manifest.documents - 1})`);
    }
    for (const shard of this.shards) {
      const n = shard.offsets.length - 1;
      if (i < n) return shard.tokens.subarray(shard.offsets[i], shard.offsets[i + 1]);
      i -= n;
    }
    throw new Error('unreachable: documents are counted in the manifest');
  }

  sampler(split: Split, options: { batchSize: number; seqLen: number; seed: number; resume?: SamplerState }): BatchSampler {
    const s = this.splits[split];
    if (!s) throw new MambalabError(`${this.dir}: no split '${split}' (train or validation)`);
    return new WindowSampler(s.stream, options, `${this.dir} (${split})`);
  }
}

/** Opens a prepared dataset folder. */
export function openDataset(dir: string, options: OpenDatasetOptions = {}): Dataset {
  const fraction = options.validationFraction ?? 0.05;
  if (!(fraction > 0 && fraction < 1)) throw new MambalabError(`openDataset: validationFraction must be in (0, 1), got ${fraction}`);
  const path = resolve(dir);
  const manifest = readManifest(path);
  const shards = manifest.shards.map((entry) => {
    const shard = readShard(join(path, entry.file));
    const documents = shard.offsets.length - 1;
    if (documents !== entry.documents || shard.tokens.length !== entry.tokens) {
      throw new MambalabError(
        `${join(path, entry.file)} holds ${documents} documents and ${shard.tokens.length} tokens, but dataset.json says ${entry.documents} and ${entry.tokens}: the dataset is damaged; prepare it again`,
      );
    }
    const outside = firstAtOrAbove(shard.tokens, manifest.vocabSize);
    if (outside >= 0) {
      throw new MambalabError(
        `${join(path, entry.file)}: token ${outside} is id ${shard.tokens[outside]}, outside the vocabulary of ${manifest.vocabSize} that dataset.json gives: the dataset is damaged; prepare it again`,
      );
    }
    return shard;
  });
  return new Dataset(path, manifest, shards, fraction);
}

/** Index of the first id ≥ limit, or -1 (a plain loop: shards hold tens of millions of ids). */
function firstAtOrAbove(ids: Uint16Array, limit: number): number {
  for (let i = 0; i < ids.length; i++) if (ids[i]! >= limit) return i;
  return -1;
}

/**
 * Document d goes to validation when hash(d) falls under the fraction; consecutive documents of
 * one split become one run of the split's stream.
 */
function splitByDocument(shards: Shard[], documents: number, fraction: number): Record<Split, { stream: TokenStream; documents: number }> {
  const threshold = fraction * 2 ** 32;
  const hashed = (d: number) => hash32(d ^ SPLIT_SALT) < threshold;
  // A split without documents cannot be sampled: when the hash sends none to validation, the
  // last document goes there.
  let forceLast = documents >= 2;
  for (let d = 0; d < documents && forceLast; d++) if (hashed(d)) forceLast = false;
  const isValidation = (d: number) => hashed(d) || (forceLast && d === documents - 1);

  const runs: Record<Split, Uint16Array[]> = { train: [], validation: [] };
  const counts: Record<Split, number> = { train: 0, validation: 0 };
  let d = 0;
  for (const shard of shards) {
    const n = shard.offsets.length - 1;
    let runStart = 0;
    let runSplit: Split | undefined;
    for (let i = 0; i < n; i++, d++) {
      const split: Split = isValidation(d) ? 'validation' : 'train';
      counts[split]++;
      if (split !== runSplit) {
        if (runSplit) runs[runSplit].push(shard.tokens.subarray(shard.offsets[runStart], shard.offsets[i]));
        runSplit = split;
        runStart = i;
      }
    }
    if (runSplit) runs[runSplit].push(shard.tokens.subarray(shard.offsets[runStart], shard.offsets[n]));
  }
  return {
    train: { stream: new TokenStream(runs.train), documents: counts.train },
    validation: { stream: new TokenStream(runs.validation), documents: counts.validation },
  };
}
