// Small real pieces for tests that train: a 256-token vocabulary, a one-layer Mamba and an
// in-memory token stream with some structure to learn (steps take milliseconds).
import { InMemoryTokens } from '../../kernel/src/data/source.js';
import { createModel, type Model } from '../../kernel/src/models/model.js';
import type { ModelConfig } from '../../kernel/src/models/config.js';
import { Trainer, type TrainerOptions } from '../../kernel/src/train/trainer.js';

export const TINY_MODEL: Partial<ModelConfig> = { vocabSize: 256, dModel: 16, pattern: 'M*1', seed: 1 };
/** MoE-Mamba in miniature: two Mamba + switch-MoE pairs, 4 experts (expert layers 1 and 3). */
export const TINY_MOE: Partial<ModelConfig> = { ...TINY_MODEL, model: 'moe-mamba', pattern: 'ME*2', numExperts: 4, expertHidden: 16 };
export const TINY_TRAINER: Partial<TrainerOptions> = { batchSize: 2, seqLen: 16, lr: 3e-3, warmupSteps: 0 };

/** A repeating pattern with noise: next-token loss falls quickly from ln(256). */
export function tinyData(length = 4096): InMemoryTokens {
  const stream = (n: number, offset: number) => Uint16Array.from({ length: n }, (_, i) => ((i * 7 + offset) % 31) + ((i * 13) % 5));
  return new InMemoryTokens('tiny synthetic', 256, {
    train: { tokens: stream(length, 0), documents: 1 },
    validation: { tokens: stream(512, 3), documents: 1 },
  });
}

export function tinyTrainer(model: Partial<ModelConfig> = {}, options: Partial<TrainerOptions> = {}): { model: Model; trainer: Trainer } {
  const m = createModel({ ...TINY_MODEL, ...model });
  return { model: m, trainer: new Trainer(m, { ...TINY_TRAINER, ...options }) };
}
