// Model configs: defaults from the papers, and validation that names the bad field before
// anything is allocated.
import { MambalabError } from '../errors.js';
import type { DType, NativeModelConfig, Precision } from '../native.js';
import { engineLayers, type PatternLayer } from './pattern.js';

export type Device = 'cpu' | 'cuda' | 'auto';
/** gelu: fc2(gelu(fc1 x)); swiglu / geglu: fc1 gives [up; gate], fc2(up · silu(gate)) / fc2(up · gelu(gate)). */
export type FeedForwardKind = 'gelu' | 'swiglu' | 'geglu';
/** The norm before the LM head: RMSNorm (mamba_ssm), or LayerNorm with a bias (BlackMamba's released model). */
export type FinalNormKind = 'rmsnorm' | 'layernorm';
export type RouterKind = 'switch' | 'sinkhorn';

export const DEVICES: readonly Device[] = ['cpu', 'cuda', 'auto'];
export const DTYPES: readonly DType[] = ['float32', 'float64'];
export const PRECISIONS: readonly Precision[] = ['bf16', 'fp32'];
export const FEED_FORWARD_KINDS: readonly FeedForwardKind[] = ['gelu', 'swiglu', 'geglu'];
export const FINAL_NORMS: readonly FinalNormKind[] = ['rmsnorm', 'layernorm'];

/** Model families (see presets.ts); the pattern and router settings define the model. */
export const MODEL_FAMILIES = ['mamba', 'mamba-mlp', 'moe-mamba', 'parallel-moe-mamba', 'blackmamba', 'transformer', 'transformer-moe', 'jamba'] as const;

export interface ModelConfig {
  /** Family name, for presets and display (e.g. "mamba"). */
  model: string;
  /** Token ids must be below this (GPT-2: 50257). */
  vocabSize: number;
  /** The embedding has vocabSize rounded up to a multiple of this (mamba_ssm uses 8). */
  padVocabMultiple: number;
  dModel: number;
  /** Layer pattern, e.g. "M*4" (see models/pattern.ts). */
  pattern: string;
  dState: number;
  dConv: number;
  expand: number;
  /** "auto" is ceil(dModel / 16). */
  dtRank: number | 'auto';
  dtMin: number;
  dtMax: number;
  dtInitFloor: number;
  normEps: number;
  /** The norm before the LM head; each layer's pre-norm is RMSNorm either way. */
  finalNorm: FinalNormKind;
  /** Dense MLP ('F' layers): hidden size and kind. */
  dFF: number;
  mlpKind: FeedForwardKind;
  /** Mixture of experts ('E' layers). */
  numExperts: number;
  expertHidden: number;
  expertKind: FeedForwardKind;
  router: RouterKind;
  /** Experts per token (Jamba-style: 2). */
  topK: number;
  /** Each expert takes at most capacityFactor · topK · tokens / numExperts tokens; 'dropless' takes all. */
  capacityFactor: number | 'dropless';
  /**
   * Weight α of the switch router's load-balancing loss α·E·Σ f·P. Sinkhorn routers have no
   * auxiliary loss: with router "sinkhorn" it resolves to 0, and another weight is an error
   * (except the switch default 0.01, which configs saved before this rule hold).
   */
  auxLossWeight: number;
  routerBias: boolean;
  /** Sinkhorn stops when its normalised column scales change by less than this (L1). */
  sinkhornTol: number;
  sinkhornMaxIter: number;
  /** Attention ('A' layers): query heads; the head dimension is dModel / nHeads. */
  nHeads: number;
  /** Key/value heads (grouped-query attention): nHeads is multi-head, 1 multi-query; must divide nHeads. Unset: nHeads. */
  nKvHeads: number;
  /** Rotary position embeddings on queries and keys (half-split, as HF Llama and GPT-NeoX). */
  rope: boolean;
  ropeTheta: number;
  /**
   * Learned absolute positions added to the token embedding, for sequences up to this length;
   * 0: none (Mamba layers carry position themselves, as in Jamba). Not together with rope.
   */
  maxPositions: number;
  seed: number;
  /** Of the weights as read and written; on "cuda" it must be float32 (fp32 master weights). */
  dtype: DType;
  /** "auto": CUDA when the engine sees a GPU, else the CPU (see models/device.ts). */
  device: Device;
  /** GPU compute: bf16 with fp32 master weights, optimizer and residual, or fp32 throughout. The CPU computes in dtype. */
  precision: Precision;
  /** No atomics in any reduction, so two runs with the same seed are bit-identical (a little slower on the GPU). */
  deterministic: boolean;
}

export const DEFAULT_CONFIG: ModelConfig = {
  model: 'mamba',
  vocabSize: 50257,
  padVocabMultiple: 8,
  dModel: 64,
  pattern: 'M*2',
  dState: 16,
  dConv: 4,
  expand: 2,
  dtRank: 'auto',
  dtMin: 0.001,
  dtMax: 0.1,
  dtInitFloor: 1e-4,
  normEps: 1e-5,
  finalNorm: 'rmsnorm',
  dFF: 256,
  mlpKind: 'gelu',
  numExperts: 8,
  expertHidden: 256,
  expertKind: 'gelu',
  router: 'switch',
  topK: 1,
  capacityFactor: 1.0,
  auxLossWeight: 0.01,
  routerBias: false,
  sinkhornTol: 1e-4,
  sinkhornMaxIter: 100,
  nHeads: 8,
  nKvHeads: 8,
  rope: false,
  ropeTheta: 10000,
  maxPositions: 0,
  seed: 0,
  dtype: 'float32',
  device: 'cpu',
  precision: 'bf16',
  deterministic: false,
};

const KEYS = Object.keys(DEFAULT_CONFIG) as (keyof ModelConfig)[];

function bad(field: string, expected: string, got: unknown): never {
  throw new MambalabError(`config.${field}: expected ${expected}, got ${JSON.stringify(got)}`);
}

function oneOf(c: ModelConfig, field: keyof ModelConfig, choices: readonly string[]): void {
  const v = c[field];
  if (typeof v !== 'string' || !choices.includes(v)) {
    bad(field, `${choices.slice(0, -1).map((x) => `"${x}"`).join(', ')} or "${choices.at(-1)}"`, v);
  }
}

function positiveInt(c: ModelConfig, field: keyof ModelConfig, max = 1 << 24): void {
  const v = c[field];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max) bad(field, `an integer in [1, ${max}]`, v);
}

function positiveNumber(c: ModelConfig, field: keyof ModelConfig): void {
  const v = c[field];
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) bad(field, 'a positive finite number', v);
}

/** Fills defaults and checks every field; throws MambalabError naming the first bad one. */
export function resolveConfig(partial: Partial<ModelConfig> = {}): ModelConfig {
  if (partial === null || typeof partial !== 'object') bad('', 'an object', partial);
  if ('config' in partial && 'training' in partial) {
    throw new MambalabError("config: got a preset (its description, config and training); a model takes the preset's config, e.g. createModel(preset('mamba', 'tiny').config)");
  }
  for (const key of Object.keys(partial)) {
    if (!KEYS.includes(key as keyof ModelConfig)) {
      throw new MambalabError(`config.${key}: unknown field (known: ${KEYS.join(', ')})`);
    }
  }
  const c: ModelConfig = { ...DEFAULT_CONFIG, ...partial };
  if (!(MODEL_FAMILIES as readonly string[]).includes(c.model)) bad('model', `one of ${MODEL_FAMILIES.join(', ')}`, c.model);
  positiveInt(c, 'vocabSize', 1 << 20);
  positiveInt(c, 'padVocabMultiple', 4096);
  positiveInt(c, 'dModel', 1 << 16);
  positiveInt(c, 'dState', 256);
  positiveInt(c, 'dConv', 64);
  positiveInt(c, 'expand', 16);
  if (c.dtRank !== 'auto') positiveInt(c, 'dtRank', 1 << 16);
  positiveNumber(c, 'dtMin');
  positiveNumber(c, 'dtMax');
  positiveNumber(c, 'dtInitFloor');
  positiveNumber(c, 'normEps');
  if (c.dtMin > c.dtMax) bad('dtMin', `a value ≤ dtMax (${c.dtMax})`, c.dtMin);
  positiveInt(c, 'dFF', 1 << 20);
  positiveInt(c, 'numExperts', 4096);
  positiveInt(c, 'expertHidden', 1 << 20);
  positiveInt(c, 'topK', 4096);
  positiveInt(c, 'sinkhornMaxIter', 1 << 20);
  positiveNumber(c, 'sinkhornTol');
  oneOf(c, 'mlpKind', FEED_FORWARD_KINDS);
  oneOf(c, 'expertKind', FEED_FORWARD_KINDS);
  oneOf(c, 'finalNorm', FINAL_NORMS);
  oneOf(c, 'router', ['switch', 'sinkhorn']);
  if (c.topK > c.numExperts) bad('topK', `at most numExperts (${c.numExperts})`, c.topK);
  if (c.capacityFactor !== 'dropless' && (typeof c.capacityFactor !== 'number' || !(c.capacityFactor > 0))) {
    bad('capacityFactor', 'a positive number or "dropless"', c.capacityFactor);
  }
  if (typeof c.auxLossWeight !== 'number' || !(c.auxLossWeight >= 0)) bad('auxLossWeight', 'a number ≥ 0', c.auxLossWeight);
  if (c.router === 'sinkhorn') {
    // The engine ignores the weight here; the config says so rather than carry one that does nothing.
    if (c.auxLossWeight !== 0 && c.auxLossWeight !== DEFAULT_CONFIG.auxLossWeight) {
      bad('auxLossWeight', '0 with router "sinkhorn" (Sinkhorn routing balances the experts itself and adds no auxiliary loss; router "switch" has one)', c.auxLossWeight);
    }
    c.auxLossWeight = 0;
  }
  if (typeof c.routerBias !== 'boolean') bad('routerBias', 'true or false', c.routerBias);
  if (!Number.isSafeInteger(c.seed) || c.seed < 0) bad('seed', 'a non-negative integer', c.seed);
  oneOf(c, 'dtype', DTYPES);
  oneOf(c, 'device', DEVICES);
  if (c.device === 'cuda' && c.dtype !== 'float32') bad('dtype', '"float32" on device "cuda" (float64 runs on the CPU only)', c.dtype);
  oneOf(c, 'precision', PRECISIONS);
  if (typeof c.deterministic !== 'boolean') bad('deterministic', 'true or false', c.deterministic);
  if (typeof c.pattern !== 'string') bad('pattern', 'a layer pattern string such as "M*4"', c.pattern);
  const layers = engineLayers(c.pattern);
  if (partial.nKvHeads === undefined) c.nKvHeads = c.nHeads; // multi-head unless asked otherwise
  checkAttention(c, layers);
  return c;
}

/** Attention heads and positional encodings: shapes the engine can build, named before it allocates. */
function checkAttention(c: ModelConfig, layers: PatternLayer[]): void {
  positiveInt(c, 'nHeads', 4096);
  positiveInt(c, 'nKvHeads', 4096);
  if (typeof c.rope !== 'boolean') bad('rope', 'true or false', c.rope);
  positiveNumber(c, 'ropeTheta');
  if (!Number.isInteger(c.maxPositions) || c.maxPositions < 0 || c.maxPositions > 1 << 24) bad('maxPositions', `an integer in [0, ${1 << 24}] (0: no learned positions)`, c.maxPositions);
  // One positional encoding at a time, as llm-random's modes have it: both would be a model no paper trained.
  if (c.rope && c.maxPositions > 0) bad('maxPositions', '0 with rope: true (choose rotary or learned positions, not both)', c.maxPositions);
  if (!layers.some((layer) => layer.includes('A'))) return;
  if (c.dModel % c.nHeads !== 0) bad('nHeads', `a divisor of dModel (${c.dModel}), so that every head has dModel / nHeads dimensions`, c.nHeads);
  if (c.nHeads % c.nKvHeads !== 0) bad('nKvHeads', `a divisor of nHeads (${c.nHeads}), so that each key/value head serves the same number of query heads`, c.nKvHeads);
  if (c.rope && headDim(c) % 2 !== 0) bad('rope', `false with an odd head dimension (dModel / nHeads = ${c.dModel} / ${c.nHeads} = ${headDim(c)}; rope rotates pairs of dimensions)`, c.rope);
}

/** Each attention head's dimension. */
export function headDim(c: ModelConfig): number {
  return c.dModel / c.nHeads;
}

export function paddedVocabSize(c: ModelConfig): number {
  return Math.ceil(c.vocabSize / c.padVocabMultiple) * c.padVocabMultiple;
}

/**
 * The engine's config: this config itself, with the pattern parsed once, here, and the capacity
 * factor at most numExperts. From there on every expert has a slot for every assignment, so no
 * larger factor routes differently; the engine allocates its slots by the factor, and 2^31 (a
 * typo, a damaged config.json) asked it for more memory than there is.
 */
export function toNativeConfig(c: ModelConfig): NativeModelConfig {
  const capacityFactor = c.capacityFactor === 'dropless' ? c.capacityFactor : Math.min(c.capacityFactor, c.numExperts);
  return { ...c, capacityFactor, layers: engineLayers(c.pattern) };
}
