// Named sizes per model family: a model config and the training settings that suit it.
// The paper sizes carry the papers' hyperparameters (../shared/PAPERS.md).
import { MambalabError } from '../errors.js';
import type { ModelConfig } from './config.js';

export interface TrainingDefaults {
  batchSize: number;
  seqLen: number;
  lr: number;
  minLr: number;
  warmupSteps: number;
  weightDecay: number;
  gradClip: number;
}

export interface Preset {
  description: string;
  config: Partial<ModelConfig>;
  training: TrainingDefaults;
}

const TINY_TRAINING: TrainingDefaults = { batchSize: 8, seqLen: 128, lr: 3e-3, minLr: 1e-5, warmupSteps: 10, weightDecay: 0.1, gradClip: 1.0 };
const SMALL_TRAINING: TrainingDefaults = { batchSize: 8, seqLen: 256, lr: 2e-3, minLr: 1e-5, warmupSteps: 50, weightDecay: 0.1, gradClip: 1.0 };
// MoE-Mamba v1: batch 256 × 256, lr 1e-3 (tuned for Mamba), 1% warmup of 100k steps, clip 0.5.
const V1_TRAINING: TrainingDefaults = { batchSize: 256, seqLen: 256, lr: 1e-3, minLr: 1e-5, warmupSteps: 1000, weightDecay: 0.1, gradClip: 0.5 };
// BlackMamba: context 2048. Also the Jamba-style preset's (Jamba's recipe is unpublished), so
// the two hybrids of one size train alike.
const BLACKMAMBA_TRAINING: TrainingDefaults = { batchSize: 8, seqLen: 2048, lr: 1.2e-3, minLr: 1.2e-4, warmupSteps: 1500, weightDecay: 0.1, gradClip: 1.0 };

const SWITCH = { router: 'switch', expertKind: 'gelu', capacityFactor: 1.0, auxLossWeight: 0.01 } as const;
const SINKHORN = { router: 'sinkhorn', expertKind: 'swiglu', routerBias: true, capacityFactor: 'dropless', auxLossWeight: 0 } as const;
// The MoE-Mamba paper's Transformer baselines come from llm-random's "vanilla" mode: learned
// absolute positions, no rope. 1024 positions cover the v1 context (256) and v2's (1024).
const LEARNED_POSITIONS = { rope: false, maxPositions: 1024 } as const;
// Jamba-v0.1 (HF JambaConfig): no positional encoding, RMSNorm eps 1e-6, SwiGLU MLPs and
// experts, 16 experts, top-2 softmax routing without capacity, aux loss 0.001.
const JAMBA = { rope: false, maxPositions: 0, normEps: 1e-6, mlpKind: 'swiglu', expertKind: 'swiglu', router: 'switch', topK: 2, capacityFactor: 'dropless', auxLossWeight: 0.001 } as const;
// One Jamba block of 8 layers, each a mixer (attention iff i % 8 == 4, else Mamba) then a
// feed-forward (MoE iff i is odd, else a dense MLP): two of our layers per Jamba layer.
const JAMBA_BLOCK = 'MFMEMFMEAFMEMFME';

const PRESETS: Record<string, Record<string, Preset>> = {
  mamba: {
    tiny: { description: 'd_model 64, 2 Mamba layers: trains in seconds on a laptop CPU', config: { dModel: 64, pattern: 'M*2' }, training: TINY_TRAINING },
    small: { description: 'd_model 256, 8 Mamba layers: learns real structure in minutes on a CPU', config: { dModel: 256, pattern: 'M*8' }, training: SMALL_TRAINING },
    v1: { description: "MoE-Mamba paper v1 baseline: d_model 512, 16 Mamba layers (27M)", config: { dModel: 512, pattern: 'M*16' }, training: V1_TRAINING },
  },
  'mamba-mlp': {
    tiny: { description: 'd_model 64, Mamba + MLP (hidden 128)', config: { dModel: 64, pattern: 'MF', dFF: 128 }, training: TINY_TRAINING },
    v1: { description: 'MoE-Mamba paper v1 Mamba-MLP: 8 × (Mamba, MLP 1536), d_model 512 (26M)', config: { dModel: 512, pattern: 'MF*8', dFF: 1536 }, training: V1_TRAINING },
  },
  'moe-mamba': {
    tiny: { description: 'd_model 64, Mamba + MoE (4 experts × 128, switch)', config: { dModel: 64, pattern: 'ME', numExperts: 4, expertHidden: 128, ...SWITCH }, training: TINY_TRAINING },
    v1: {
      description: 'MoE-Mamba paper v1: 8 × (Mamba, MoE of 32 experts × 1536), d_model 512 (416M total, 26M active)',
      config: { dModel: 512, pattern: 'ME*8', numExperts: 32, expertHidden: 1536, ...SWITCH },
      training: V1_TRAINING,
    },
  },
  'parallel-moe-mamba': {
    tiny: { description: 'd_model 64, Mamba and MoE in parallel (4 experts × 128)', config: { dModel: 64, pattern: '(M|E)', numExperts: 4, expertHidden: 128, ...SWITCH }, training: TINY_TRAINING },
    v1: {
      description: 'MoE-Mamba paper parallel variant: 8 × (Mamba | MoE of 32 × 1536), d_model 512',
      config: { dModel: 512, pattern: '(M|E)*8', numExperts: 32, expertHidden: 1536, ...SWITCH },
      training: V1_TRAINING,
    },
  },
  blackmamba: {
    tiny: { description: 'd_model 64, Mamba + MoE (4 SwiGLU experts × 128, Sinkhorn)', config: { dModel: 64, pattern: 'ME', numExperts: 4, expertHidden: 128, ...SINKHORN }, training: TINY_TRAINING },
    '340m-1.5b': {
      description: 'BlackMamba 340M/1.5B: 15 × (Mamba, MoE of 8 SwiGLU experts × 3072), d_model 1152',
      config: { dModel: 1152, pattern: 'ME*15', numExperts: 8, expertHidden: 3072, ...SINKHORN },
      training: BLACKMAMBA_TRAINING,
    },
    '630m-2.8b': {
      description: 'BlackMamba 630M/2.8B: 18 × (Mamba, MoE of 8 SwiGLU experts × 3872), d_model 1472',
      config: { dModel: 1472, pattern: 'ME*18', numExperts: 8, expertHidden: 3872, ...SINKHORN },
      training: BLACKMAMBA_TRAINING,
    },
  },
  transformer: {
    tiny: {
      description: 'd_model 64, attention (4 heads, learned positions) + GELU MLP (hidden 128)',
      config: { dModel: 64, pattern: 'AF', nHeads: 4, dFF: 128, ...LEARNED_POSITIONS },
      training: TINY_TRAINING,
    },
    v1: {
      description:
        'MoE-Mamba paper v1 Transformer: 8 × (attention with 8 heads, MLP 2048), d_model 512, learned positions (25M); GELU MLPs where the paper\'s code has ReLU',
      config: { dModel: 512, pattern: 'AF*8', nHeads: 8, dFF: 2048, ...LEARNED_POSITIONS },
      training: V1_TRAINING,
    },
  },
  'transformer-moe': {
    tiny: {
      description: 'd_model 64, attention (4 heads, learned positions) + MoE (4 experts × 128, switch)',
      config: { dModel: 64, pattern: 'AE', nHeads: 4, numExperts: 4, expertHidden: 128, ...LEARNED_POSITIONS, ...SWITCH },
      training: TINY_TRAINING,
    },
    v1: {
      description: 'MoE-Mamba paper v1 Transformer-MoE: 8 × (attention with 8 heads, MoE of 32 GELU experts × 2048), d_model 512, learned positions (545M total, 25M active)',
      config: { dModel: 512, pattern: 'AE*8', nHeads: 8, numExperts: 32, expertHidden: 2048, ...LEARNED_POSITIONS, ...SWITCH },
      training: V1_TRAINING,
    },
  },
  jamba: {
    tiny: {
      description: 'd_model 64, one Jamba block (7 Mamba + 1 attention with 4 heads / 2 KV heads, MoE of 4 SwiGLU experts × 128 top-2 every other layer)',
      config: { dModel: 64, pattern: JAMBA_BLOCK, nHeads: 4, nKvHeads: 2, dFF: 128, numExperts: 4, expertHidden: 128, ...JAMBA },
      training: TINY_TRAINING,
    },
    // Jamba-v0.1 itself (52B) needs ~0.8 TB for fp32 weights, gradients and AdamW moments. This
    // keeps its structure and ratios (4 query heads per KV head, MLP and experts 3.5 × d_model
    // as 14336 / 4096, 16 experts top-2) at BlackMamba 340M/1.5B's size, so it trains on one
    // GPU and the two hybrids compare at one size. Named as BlackMamba's sizes are: parameters
    // a token uses / all parameters, the embedding included.
    '410m-1.6b': {
      description:
        'Jamba-style at a size one GPU trains, beside BlackMamba 340M/1.5B: 2 Jamba blocks (16 layers: 14 Mamba, 2 attention with 16 heads / 4 KV heads), d_model 1024, MLP 3584, MoE of 16 SwiGLU experts × 3584 top-2 every other layer (1.60B total / 363M active without the embedding)',
      config: { dModel: 1024, pattern: `${JAMBA_BLOCK}*2`, nHeads: 16, nKvHeads: 4, dFF: 3584, numExperts: 16, expertHidden: 3584, ...JAMBA },
      training: BLACKMAMBA_TRAINING,
    },
  },
};

/** A family's size: its config (with `model` set) and training defaults. */
export function preset(model: string, size: string): Preset {
  const family = PRESETS[model];
  if (!family) throw new MambalabError(`preset(${JSON.stringify(model)}, …): unknown model (known: ${Object.keys(PRESETS).join(', ')})`);
  const p = family[size];
  if (!p) throw new MambalabError(`preset(${JSON.stringify(model)}, ${JSON.stringify(size)}): unknown size (${model} has ${Object.keys(family).join(', ')})`);
  return { ...p, config: { model, ...p.config } };
}

export function presetNames(): Record<string, string[]> {
  return Object.fromEntries(Object.entries(PRESETS).map(([m, sizes]) => [m, Object.keys(sizes)]));
}
