// The engine as a Model holds it: every pass (whoever calls it: the model, a Trainer, a test
// driver holding model.engine) rejects with the user's errors and reports back to the model,
// which keeps what the last one measured.
import { MambalabError } from '../errors.js';
import type { NativeMetrics, NativeModel } from '../native.js';
import type { ModelConfig } from './config.js';

export type Pass = 'evaluate' | 'lossAndGradients' | 'trainStep';

/**
 * How MoE layers pick each token's experts in a pass.
 * - 'inference': the top-k router logits. forward()'s default, and evaluation's.
 * - 'training': the training router. lossAndGradients(), training steps, and
 *   forward(batch, { routing: 'training' }).
 * Switch routers pick the same experts either way. Sinkhorn routers (BlackMamba) do not: in
 * training they pick on Sinkhorn-balanced scores, so the two give different losses on one batch.
 */
export type RoutingMode = 'inference' | 'training';
export const ROUTING_MODES: readonly RoutingMode[] = ['inference', 'training'];

/** What one pass of a batch through the model measured (model.lastForward). */
export interface ForwardMetrics {
  /** Mean next-token cross-entropy (what forward() and lossAndGradients() return). */
  loss: number;
  /** The switch routers' weighted load-balancing loss, summed over MoE layers: part of the training objective, not of `loss`; 0 without switch MoE layers. */
  auxLoss: number;
  /** Per MoE layer, tokens routed to each expert (empty without MoE layers). */
  experts: number[][];
  /** Per MoE layer, assignments dropped over capacity. */
  dropped: number[];
  routing: RoutingMode;
}

export function forwardMetrics(pass: Pass, { loss, auxLoss, experts }: NativeMetrics): ForwardMetrics {
  const routing = pass === 'evaluate' ? 'inference' : 'training';
  return { loss, auxLoss, experts: experts.map((l) => l.counts), dropped: experts.map((l) => l.dropped), routing };
}

// The engine checks every token id against the vocabulary (on the CPU and the GPU alike) and
// says so in these words; a bad id is the user's batch to fix.
const OUTSIDE_VOCABULARY = /^token id -?\d+ at position \d+ of the batch is outside the vocabulary/;

function asBatchError(error: unknown): unknown {
  if (error instanceof Error && !(error instanceof MambalabError) && OUTSIDE_VOCABULARY.test(error.message)) {
    return new MambalabError(`batch: ${error.message}`, { cause: error });
  }
  return error;
}

// Generation's checks in the engine (generate/session.h, nn/lm.h) start so: what they name is
// the caller's prompt or option to fix.
const GENERATE_CHECK = /^(generate|sampling): /;

async function generation<T>(start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (error) {
    const batch = asBatchError(error);
    if (batch instanceof Error && !(batch instanceof MambalabError) && GENERATE_CHECK.test(batch.message)) {
      throw new MambalabError(batch.message, { cause: batch });
    }
    throw batch;
  }
}

/**
 * Learned positions stop at maxPositions: a longer sequence is the user's batch (or seqLen) to
 * fix, named before the engine allocates anything for it.
 */
function checkLength(maxPositions: number, lenPlusOne: number): void {
  const seqLen = lenPlusOne - 1;
  if (maxPositions > 0 && seqLen > maxPositions) {
    throw new MambalabError(`batch: sequences of ${seqLen} tokens are longer than config.maxPositions (${maxPositions}), the positions the model has learned embeddings for; use seqLen ≤ ${maxPositions} or a model with more positions`);
  }
}

/**
 * The engine with each pass's batch errors made MambalabErrors, batches longer than the
 * config's learned positions rejected, and `done` told of each finished pass.
 */
export function watchPasses(engine: NativeModel, config: Pick<ModelConfig, 'maxPositions'>, done: (pass: Pass, metrics: NativeMetrics) => void): NativeModel {
  // The engine's own method is called at once, before the first await (its busy check sees
  // the call), then watched.
  const watch = async (pass: Pass, lenPlusOne: number, start: () => Promise<NativeMetrics>) => {
    checkLength(config.maxPositions, lenPlusOne);
    let metrics: NativeMetrics;
    try {
      metrics = await start();
    } catch (error) {
      throw asBatchError(error);
    }
    done(pass, metrics);
    return metrics;
  };
  // A delegate, not the engine patched: its methods are fixed (native.ts's withUserErrors).
  return {
    get dtype() {
      return engine.dtype;
    },
    get stepsDone() {
      return engine.stepsDone;
    },
    set stepsDone(steps) {
      engine.stepsDone = steps;
    },
    get optimizerStateBytes() {
      return engine.optimizerStateBytes;
    },
    get parameterMemory() {
      return engine.parameterMemory;
    },
    parameters: () => engine.parameters(),
    read: (name, slot, out) => engine.read(name, slot, out),
    write: (name, slot, values) => engine.write(name, slot, values),
    evaluate: (...args) => watch('evaluate', args[2], () => engine.evaluate(...args)),
    lossAndGradients: (...args) => watch('lossAndGradients', args[2], () => engine.lossAndGradients(...args)),
    trainStep: (...args) => watch('trainStep', args[2], () => engine.trainStep(...args)),
    parallelLogits: (...args) => generation(() => engine.parallelLogits(...args)),
    generateStart: (...args) => generation(() => engine.generateStart(...args)),
    generateNext: (...args) => generation(() => engine.generateNext(...args)),
    generateFeed: (...args) => generation(() => engine.generateFeed(...args)),
    joinRanks: (ranks) => engine.joinRanks(ranks),
    fromRankZero: (values) => engine.fromRankZero(values),
    dispose: () => engine.dispose(),
  };
}
