// Held-out evaluation: the mean next-token loss over fixed windows of the validation split
// (the same windows every call), as many as a token budget asks for.
import type { TokenSource } from '../data/source.js';
import { MambalabError } from '../errors.js';
import type { Model } from '../models/model.js';

const EVAL_SEED = 0x5eed;
/** Batches evaluated when neither batches nor tokens are given. */
export const DEFAULT_EVAL_BATCHES = 4;

export interface EvalSize {
  /** Batches of the trainer's shape (default 4). */
  batches?: number;
  /** At least this many validation tokens, in whole batches (overrides batches). */
  tokens?: number;
}

export interface EvalShape {
  batchSize: number;
  seqLen: number;
  /** Each batch runs in this many equal slices, so evaluation fits where a training micro-batch does. */
  microBatches: number;
}

export interface Evaluation {
  loss: number;
  /** exp(loss). */
  perplexity: number;
  /** Validation tokens predicted. */
  tokens: number;
}

/** The number of batches an EvalSize asks for, checked. */
export function evalBatches(size: EvalSize, shape: EvalShape, where: string): number {
  if (size.tokens !== undefined) {
    if (!Number.isInteger(size.tokens) || size.tokens < 1) throw new MambalabError(`${where}: evalTokens must be a positive integer, got ${size.tokens}`);
    return Math.ceil(size.tokens / (shape.batchSize * shape.seqLen));
  }
  const batches = size.batches ?? DEFAULT_EVAL_BATCHES;
  if (!Number.isInteger(batches) || batches < 1) throw new MambalabError(`${where}: evalBatches must be a positive integer, got ${batches}`);
  return batches;
}

/** The model's mean loss over the validation windows that `size` asks for. */
export async function evaluateModel(model: Model, data: TokenSource, shape: EvalShape, size: EvalSize = {}): Promise<Evaluation> {
  const batches = evalBatches(size, shape, 'evaluate');
  const { batchSize, seqLen, microBatches } = shape;
  const sampler = data.sampler('validation', { batchSize, seqLen, seed: EVAL_SEED });
  const rows = batchSize / microBatches;
  const width = seqLen + 1;
  let total = 0;
  for (let i = 0; i < batches; i++) {
    const b = sampler.next();
    for (let k = 0; k < microBatches; k++) {
      const slice = b.tokens.subarray(k * rows * width, (k + 1) * rows * width);
      total += (await model.engine.evaluate(slice, rows, width)).loss;
    }
  }
  const loss = total / (batches * microBatches);
  return { loss, perplexity: Math.exp(loss), tokens: batches * batchSize * seqLen };
}
