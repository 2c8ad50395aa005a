// Loads the C++ engine (built by cmake-js into native/build) and types its surface.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { MambalabError } from './errors.js';

export type DType = 'float32' | 'float64';
export type Slot = 'value' | 'grad' | 'adam_m' | 'adam_v';

/** The model config as the engine reads it (filled and checked by models/config.ts). */
export interface NativeModelConfig {
  vocabSize: number;
  paddedVocabSize: number;
  dModel: number;
  layers: string;
  normEps: number;
  seed: number;
  mamba: { dState: number; dConv: number; expand: number; dtRank: number; dtMin: number; dtMax: number; dtInitFloor: number };
  mlp: { kind: 'gelu' | 'swiglu'; hidden: number };
  moe: {
    numExperts: number;
    expertKind: 'gelu' | 'swiglu';
    expertHidden: number;
    router: 'switch' | 'sinkhorn';
    topK: number;
    /** 0: dropless */
    capacityFactor: number;
    auxWeight: number;
    routerBias: boolean;
    sinkhornTol: number;
    sinkhornMaxIter: number;
  };
}

/** What a forward (and step) reports: losses and, per MoE layer, tokens per expert. */
export interface NativeMetrics {
  loss: number;
  auxLoss: number;
  /** 0 unless a training step (norm before clipping). */
  gradNorm: number;
  experts: { counts: number[]; dropped: number }[];
}

export interface NativeParameter {
  name: string;
  shape: number[];
  fileShape: number[];
  weightDecay: boolean;
}

export interface NativeOptimizer {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  gradClip: number;
}

export interface NativeModel {
  readonly dtype: DType;
  stepsDone: number;
  parameters(): NativeParameter[];
  read(name: string, slot: Slot, out: Float32Array | Float64Array): void;
  write(name: string, slot: Slot, values: Float32Array | Float64Array): void;
  evaluate(tokens: Int32Array, batch: number, lenPlusOne: number): Promise<NativeMetrics>;
  lossAndGradients(tokens: Int32Array, batch: number, lenPlusOne: number): Promise<NativeMetrics>;
  trainStep(tokens: Int32Array, batch: number, lenPlusOne: number, lr: number, optimizer: NativeOptimizer): Promise<NativeMetrics>;
}

export interface NativeAddon {
  Model: new (config: NativeModelConfig, dtype: DType) => NativeModel;
  info(): {
    threads: number;
    backends: string[];
    /** CUDA devices the engine can use; `status` says why there are none ("no GPU: ..."). */
    gpu: { builtWithCuda: boolean; deviceCount: number; name: string; computeCapability: number; status: string };
  };
}

const here = dirname(fileURLToPath(import.meta.url));
// From kernel/src or kernel/dist alike, the build lives in native/build at the repo root.
const addonPath = join(here, '..', '..', 'native', 'build', 'Release', 'mambalab.node');

let loaded: NativeAddon | undefined;

/** The engine, loaded once per process. */
export function native(): NativeAddon {
  if (loaded) return loaded;
  if (!existsSync(addonPath)) {
    throw new MambalabError(`the native engine is not built (no ${addonPath}); run \`npm install\` at the repo root`);
  }
  loaded = createRequire(import.meta.url)(addonPath) as NativeAddon;
  return loaded;
}
