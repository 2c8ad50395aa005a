// Named sizes: a model config and the training settings that suit it.
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

const PRESETS: Record<string, Record<string, Preset>> = {
  mamba: {
    tiny: {
      description: 'd_model 64, 2 Mamba layers, GPT-2 vocabulary: trains in seconds on a laptop CPU',
      config: { model: 'mamba', dModel: 64, pattern: 'M*2' },
      training: { batchSize: 8, seqLen: 128, lr: 3e-3, minLr: 1e-5, warmupSteps: 10, weightDecay: 0.1, gradClip: 1.0 },
    },
    small: {
      description: 'd_model 256, 8 Mamba layers: a CPU-sized model that learns real structure in minutes',
      config: { model: 'mamba', dModel: 256, pattern: 'M*8' },
      training: { batchSize: 8, seqLen: 256, lr: 2e-3, minLr: 1e-5, warmupSteps: 50, weightDecay: 0.1, gradClip: 1.0 },
    },
    'moe-mamba-v1': {
      description: "the MoE-Mamba paper's Mamba baseline (v1): d_model 512, 16 Mamba layers, context 256",
      config: { model: 'mamba', dModel: 512, pattern: 'M*16' },
      training: { batchSize: 256, seqLen: 256, lr: 1e-3, minLr: 1e-5, warmupSteps: 1000, weightDecay: 0.1, gradClip: 0.5 },
    },
  },
};

export function preset(model: string, size: string): Preset {
  const family = PRESETS[model];
  if (!family) throw new MambalabError(`--model ${model}: unknown model (known: ${Object.keys(PRESETS).join(', ')})`);
  const p = family[size];
  if (!p) throw new MambalabError(`--size ${size}: unknown size for ${model} (known: ${Object.keys(family).join(', ')})`);
  return p;
}

export function presetNames(): Record<string, string[]> {
  return Object.fromEntries(Object.entries(PRESETS).map(([m, sizes]) => [m, Object.keys(sizes)]));
}
