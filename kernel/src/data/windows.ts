// Batches of (batchSize, seqLen + 1) token windows over one split of a prepared dataset.
// Each epoch cuts the split's token stream into windows at a seeded offset and visits them in
// a seeded shuffled order, so every token is seen once per epoch. The cursor (epoch, position)
// is all the state there is: a run resumed from it sees exactly the batches it would have seen.
import { MambalabError } from '../errors.js';
import type { Batch } from './batch.js';
import { hash32, Permutation } from './permutation.js';
import type { BatchSampler, SamplerState } from './source.js';

/** A split's tokens: runs of consecutive documents (views into shards), one after another. */
export class TokenStream {
  /** Where each run starts in the stream, and (last) the stream's length. */
  private readonly starts: Float64Array;

  constructor(private readonly runs: Uint16Array[]) {
    this.starts = new Float64Array(runs.length + 1);
    runs.forEach((r, i) => (this.starts[i + 1] = this.starts[i]! + r.length));
  }

  get length(): number {
    return this.starts[this.runs.length]!;
  }

  /** Copies stream[start, start + out.length) into out (widening to int32). */
  copy(start: number, out: Int32Array): void {
    let lo = 0;
    let hi = this.runs.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid]! <= start) lo = mid;
      else hi = mid - 1;
    }
    let at = 0;
    for (let r = lo; at < out.length; r++) {
      const run = this.runs[r]!;
      const from = r === lo ? start - this.starts[r]! : 0;
      const piece = run.subarray(from, from + out.length - at);
      out.set(piece, at);
      at += piece.length;
    }
  }
}

export interface WindowSamplerOptions {
  batchSize: number;
  seqLen: number;
  seed: number;
  resume?: SamplerState;
}

export class WindowSampler implements BatchSampler {
  private readonly width: number;
  private epoch: number;
  private position: number;
  private batches: number;
  private order!: Permutation;
  private offset = 0;

  constructor(
    private readonly stream: TokenStream,
    private readonly options: WindowSamplerOptions,
    private readonly name: string,
  ) {
    const { batchSize, seqLen, seed, resume } = options;
    for (const [key, value] of Object.entries({ batchSize, seqLen })) {
      if (!Number.isInteger(value) || value < 1) throw new MambalabError(`${name}: ${key} must be a positive integer, got ${value}`);
    }
    this.width = seqLen + 1;
    if (stream.length < this.width) {
      throw new MambalabError(`${name}: ${stream.length} tokens, fewer than one window of seqLen + 1 = ${this.width}`);
    }
    if (resume) {
      if (resume.seed !== seed) throw new MambalabError(`${name}: the saved sampler state is for seed ${resume.seed}, not ${seed}`);
      if (resume.seqLen !== undefined && resume.seqLen !== seqLen) {
        throw new MambalabError(`${name}: the saved sampler state is for seqLen ${resume.seqLen}, not ${seqLen}: its windows would differ`);
      }
      if (resume.epoch === undefined || resume.position === undefined) {
        throw new MambalabError(`${name}: the saved sampler state has no epoch/position cursor (it is from another kind of data source)`);
      }
    }
    this.epoch = resume?.epoch ?? 0;
    this.position = resume?.position ?? 0;
    this.batches = resume?.batches ?? 0;
    this.startEpoch();
    // Past the epoch's last window, next() would look for a window that is not there, forever.
    if (!Number.isSafeInteger(this.position) || this.position < 0 || this.position > this.order.n) {
      throw new MambalabError(`${name}: the saved sampler state is at window ${this.position} of an epoch of ${this.order.n} windows: it is not this data's`);
    }
  }

  next(): Batch {
    const { batchSize, seqLen } = this.options;
    const tokens = new Int32Array(batchSize * this.width);
    for (let b = 0; b < batchSize; b++) {
      if (this.position === this.order.n) {
        this.epoch++;
        this.position = 0;
        this.startEpoch();
      }
      const window = this.order.at(this.position++);
      this.stream.copy(this.offset + window * this.width, tokens.subarray(b * this.width, (b + 1) * this.width));
    }
    this.batches++;
    return { tokens, batchSize, seqLen };
  }

  state(): SamplerState {
    return { seed: this.options.seed, batches: this.batches, epoch: this.epoch, position: this.position, seqLen: this.options.seqLen };
  }

  /** Each epoch shifts where windows start (when the split holds two windows or more) and reshuffles. */
  private startEpoch(): void {
    const seedKey = hash32(this.options.seed >>> 0) ^ hash32(Math.floor(this.options.seed / 2 ** 32));
    const key = hash32(seedKey ^ hash32(this.epoch + 0x632be5ab));
    this.offset = this.stream.length >= 2 * this.width ? hash32(key ^ 0x5bd1e995) % this.width : 0;
    this.order = new Permutation(Math.floor((this.stream.length - this.offset) / this.width), key);
  }
}
