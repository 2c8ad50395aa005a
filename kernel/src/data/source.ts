// Where training batches come from. A TokenSource holds tokenized documents split into
// train and validation by document; a sampler draws (batchSize, seqLen + 1) windows from
// one split with a seeded generator whose state can be saved and restored.
import { MambalabError } from '../errors.js';
import type { Batch } from './batch.js';
import { SeededRandom } from './random.js';

export type Split = 'train' | 'validation';

/** Where a sampler is, saved in checkpoints (JSON) and given back as `resume`. */
export interface SamplerState {
  seed: number;
  batches: number;
  /** In-memory sources: the generator's state. */
  rngState?: number;
  /** Prepared datasets: the epoch, the next window's place in its shuffled order, and the window length it assumes. */
  epoch?: number;
  position?: number;
  seqLen?: number;
}

export interface BatchSampler {
  next(): Batch;
  state(): SamplerState;
}

export interface TokenSource {
  readonly description: string;
  readonly vocabSize: number;
  /** Tokens and documents in a split. */
  stats(split: Split): { tokens: number; documents: number };
  sampler(split: Split, options: { batchSize: number; seqLen: number; seed: number; resume?: SamplerState }): BatchSampler;
}

/** A split held in memory as one token stream (documents joined by end-of-text). */
export class InMemoryTokens implements TokenSource {
  constructor(
    readonly description: string,
    readonly vocabSize: number,
    private readonly splits: Record<Split, { tokens: Uint16Array | Int32Array; documents: number }>,
  ) {}

  stats(split: Split) {
    const s = this.splits[split];
    return { tokens: s.tokens.length, documents: s.documents };
  }

  sampler(split: Split, options: { batchSize: number; seqLen: number; seed: number; resume?: SamplerState }): BatchSampler {
    const { batchSize, seqLen, seed } = options;
    const stream = this.splits[split].tokens;
    const width = seqLen + 1;
    if (stream.length < width) {
      throw new MambalabError(
        `${this.description}: the ${split} split has ${stream.length} tokens, fewer than one window of seqLen + 1 = ${width}`,
      );
    }
    const rng = new SeededRandom(options.resume?.rngState ?? seed);
    let batches = options.resume?.batches ?? 0;
    return {
      next(): Batch {
        const tokens = new Int32Array(batchSize * width);
        for (let b = 0; b < batchSize; b++) {
          const start = rng.int(stream.length - width + 1);
          tokens.set(stream.subarray(start, start + width), b * width);
        }
        batches++;
        return { tokens, batchSize, seqLen };
      },
      state: () => ({ seed, rngState: rng.state, batches }),
    };
  }
}
