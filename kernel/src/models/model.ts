// A language model the notebook holds: config, parameters by name, forward to a loss, and
// checkpoints as safetensors (parameter names as mamba_ssm's MambaLMHeadModel).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { toBatch, type Batch } from '../data/batch.js';
import { MambalabError } from '../errors.js';
import { MODEL_DISPOSED, native, newNativeModel, type EngineDevice, type NativeModel, type Slot } from '../native.js';
import { resolveConfig, toNativeConfig, type ModelConfig } from './config.js';
import { chooseDevice } from './device.js';
import { runGeneration, type GenerateOptions, type Generation, type Prompt, type Prompts } from './generation.js';
import { forwardMetrics, ROUTING_MODES, watchPasses, type ForwardMetrics, type RoutingMode } from './passes.js';
import { countParameters, type ParameterCount } from './params.js';
import { readSafetensors, writeSafetensors, type FloatArray, type LazyTensor, type SafetensorsFile } from './safetensors.js';

export interface ParameterInfo {
  name: string;
  shape: number[];
  /** Shape in checkpoints (conv1d.weight is (d_inner, 1, d_conv) there, as in torch). */
  fileShape: number[];
  numel: number;
  weightDecay: boolean;
}

export const CONFIG_FILE = 'config.json';
export const WEIGHTS_FILE = 'model.safetensors';
/** The token embedding (also the LM head) and the learned positions: outside model sizes. */
const EMBEDDING_NAMES = ['backbone.embedding.weight', 'backbone.pos_embedding.weight'];

export class Model {
  readonly config: ModelConfig;
  /** The device the model runs on ("auto" resolved). */
  readonly device: EngineDevice;
  /** Why this device: "cpu", "cuda (NVIDIA H100 80GB HBM3)", "auto: CPU (no GPU: ...)". */
  readonly deviceNote: string;
  /** The arithmetic of forward and backward: config.precision on the GPU, the dtype on the CPU. */
  readonly computePrecision: 'bf16' | 'fp32' | 'fp64';
  /** @internal the engine's model (its passes watched: see watchPasses); Trainer steps it. */
  readonly engine: NativeModel;
  private readonly params: ParameterInfo[];
  /** Whether a backward pass has run: until then the engine's gradients are zeros, not gradients. */
  private hasGradients = false;
  private lastPass?: ForwardMetrics;
  private disposed = false;

  constructor(config: Partial<ModelConfig>) {
    this.config = resolveConfig(config);
    const { device, note } = chooseDevice(this.config, native().info().gpu);
    this.device = device;
    this.deviceNote = note;
    const { dtype, precision, deterministic } = this.config;
    this.computePrecision = device === 'cuda' ? precision : dtype === 'float64' ? 'fp64' : 'fp32';
    // The engine takes a precision on the GPU only: the CPU computes in the dtype.
    const options = device === 'cuda' ? { device, precision, deterministic } : { device, deterministic };
    this.engine = watchPasses(newNativeModel(toNativeConfig(this.config), dtype, options), this.config, (pass, metrics) => {
      this.lastPass = forwardMetrics(pass, metrics);
      if (pass !== 'evaluate') this.hasGradients = true;
    });
    this.params = this.engine.parameters().map((p) => ({ ...p, numel: p.shape.reduce((a, b) => a * b, 1) }));
  }

  parameters(): ParameterInfo[] {
    return this.params.map((p) => ({ ...p, shape: [...p.shape], fileShape: [...p.fileShape] }));
  }

  /**
   * Parameter counts of the allocated tensors. The embedding (tied with the LM head) and the
   * learned positions are counted apart, as the papers do; `active` is the non-embedding
   * parameters one token uses.
   */
  parameterCount(): ParameterCount {
    const total = this.params.reduce((n, p) => n + p.numel, 0);
    const isEmbedding = (p: ParameterInfo) => EMBEDDING_NAMES.includes(p.name);
    const embedding = this.params.filter(isEmbedding).reduce((n, p) => n + p.numel, 0);
    const expertShare = this.config.topK / this.config.numExperts;
    const active = this.params
      .filter((p) => !isEmbedding(p))
      .reduce((n, p) => n + (p.name.includes('.moe.experts.') ? p.numel * expertShare : p.numel), 0);
    return { total, embedding, nonEmbedding: total - embedding, active };
  }

  private info(name: string): ParameterInfo {
    const p = this.params.find((q) => q.name === name);
    if (!p) throw new MambalabError(`no parameter named '${name}' (see model.parameters())`);
    return p;
  }

  // In the engine's read/write dtype: always float32 on the GPU (its fp32 master weights).
  private checkLive(): void {
    if (this.disposed) throw new MambalabError(`${MODEL_DISPOSED} (model.dispose() freed its memory); create or load the model again`);
  }

  private newArray(numel: number): FloatArray {
    return this.engine.dtype === 'float64' ? new Float64Array(numel) : new Float32Array(numel);
  }

  /** @internal reads one buffer of a parameter (value, gradient or optimizer moment). */
  /**
   * Frees the engine's memory now (weights, optimizer state, activations; on CUDA into the
   * allocator's cache, where the next model takes it) instead of whenever the garbage collector
   * gets to it: between the models of a long notebook, one GPU holds one model at a time. Every
   * later call on this model fails with a MambalabError that says so. Calling it again does
   * nothing; while a call on the model is still running it throws.
   */
  dispose(): void {
    try {
      this.engine.dispose();
    } catch (error) {
      throw new MambalabError(`model.dispose(): ${(error as Error).message}`, { cause: error });
    }
    this.disposed = true;
  }

  readSlot(name: string, slot: Slot): FloatArray {
    this.checkLive();
    const out = this.newArray(this.info(name).numel);
    this.engine.read(name, slot, out);
    return out;
  }

  /** @internal */
  writeSlot(name: string, slot: Slot, values: ArrayLike<number>): void {
    this.checkLive();
    const p = this.info(name);
    if (values.length !== p.numel) {
      throw new MambalabError(`parameter '${name}': expected ${p.numel} values (shape [${p.shape}]), got ${values.length}`);
    }
    const data = this.newArray(p.numel);
    data.set(values);
    this.engine.write(name, slot, data);
  }

  getParameter(name: string): FloatArray {
    return this.readSlot(name, 'value');
  }

  setParameter(name: string, values: ArrayLike<number>): void {
    this.writeSlot(name, 'value', values);
  }

  /** The gradient left by the last lossAndGradients() or training step. */
  gradient(name: string): FloatArray {
    if (!this.hasGradients) {
      this.info(name); // an unknown name is the first thing to fix
      throw new MambalabError(`gradient('${name}'): no gradients yet; lossAndGradients(batch) or a training step computes them`);
    }
    return this.readSlot(name, 'grad');
  }

  /**
   * What the last pass through the model measured: its loss, the MoE layers' auxiliary loss,
   * tokens per expert and drops. Any pass: forward(), lossAndGradients(), a training step, or
   * a Trainer's evaluation. Undefined before the first.
   */
  get lastForward(): ForwardMetrics | undefined {
    return this.lastPass;
  }

  /**
   * Mean next-token cross-entropy of a batch. MoE layers route as `routing` says (see
   * RoutingMode): 'inference' (the default) computes no gradients; 'training' routes as
   * lossAndGradients() does, and like it leaves this batch's gradients readable.
   */
  async forward(batch: Batch | number[][], options: { routing?: RoutingMode } = {}): Promise<number> {
    const routing = options.routing ?? 'inference';
    if (!ROUTING_MODES.includes(routing)) throw new MambalabError(`forward: routing must be "inference" or "training", got ${JSON.stringify(routing)}`);
    const { tokens, batchSize, seqLen } = this.checked(batch);
    const metrics = routing === 'inference' ? this.engine.evaluate(tokens, batchSize, seqLen + 1) : this.engine.lossAndGradients(tokens, batchSize, seqLen + 1);
    return (await metrics).loss;
  }

  /** Loss of a batch with training routing, leaving d(loss)/d(parameter) readable through gradient(name). */
  async lossAndGradients(batch: Batch | number[][]): Promise<number> {
    const b = this.checked(batch);
    return (await this.engine.lossAndGradients(b.tokens, b.batchSize, b.seqLen + 1)).loss;
  }

  /**
   * Continues a prompt (text, or token ids) or a list of them: the prompts run through the
   * parallel forward once, then each new token takes one recurrent step per layer (the Mamba
   * layers' state and the attention layers' KV cache), in time and memory that do not grow
   * with the length. Greedy unless `temperature` > 0; see GenerateOptions.
   */
  generate(prompt: Prompt, options?: GenerateOptions): Promise<Generation>;
  generate(prompts: Prompts, options?: GenerateOptions): Promise<Generation[]>;
  async generate(prompt: Prompt | Prompts, options: GenerateOptions = {}): Promise<Generation | Generation[]> {
    const generations = await runGeneration(this.engine, this.config, prompt, options);
    const single = typeof prompt === 'string' || (Array.isArray(prompt) && typeof prompt[0] !== 'string' && !Array.isArray(prompt[0]));
    return single ? generations[0]! : generations;
  }

  /** The parallel forward's logits at every position of each row: [row][position][token]. What generate's steps reproduce. */
  async logits(rows: readonly (readonly number[])[]): Promise<FloatArray[][]> {
    const len = rows[0]?.length ?? 0;
    if (rows.length === 0 || len === 0 || rows.some((r) => !Array.isArray(r) || r.length !== len)) {
      throw new MambalabError('logits: expected rows of token ids, all of one length ≥ 1');
    }
    const flat = await this.engine.parallelLogits(Int32Array.from(rows.flat()), rows.length, len);
    const V = this.config.vocabSize;
    return rows.map((_, r) => Array.from({ length: len }, (_, t) => flat.slice((r * len + t) * V, (r * len + t + 1) * V)));
  }

  /** @internal token ids are checked against the vocabulary by the engine (see watchPasses). */
  checked(batch: Batch | number[][]): Batch {
    return toBatch(batch);
  }

  /** Writes `dir/config.json` and `dir/model.safetensors` (loadable by Python's safetensors). */
  save(dir: string): void {
    this.saveChecked(dir);
  }

  /** @internal save(), with `check` seeing each parameter's values before they are written (checkpoints refuse non-finite weights). */
  saveChecked(dir: string, check?: (name: string, values: FloatArray) => void): void {
    mkdirSync(dir, { recursive: true });
    const tensors = this.params.map((p) => this.slotTensor(p.name, 'value', p.name, p.fileShape, check));
    writeSafetensors(join(dir, WEIGHTS_FILE), tensors, { format: 'pt', mambalab_config: JSON.stringify(this.config) });
    writeFileSync(join(dir, CONFIG_FILE), JSON.stringify(this.config, null, 2) + '\n');
  }

  /**
   * @internal One buffer of a parameter as a tensor that safetensors reads when it writes it, so a
   * file of every parameter never holds them all in memory; `check` sees the values first.
   */
  slotTensor(name: string, slot: Slot, fileName: string, shape: number[], check?: (name: string, values: FloatArray) => void): LazyTensor {
    return {
      name: fileName,
      shape,
      dtype: this.engine.dtype === 'float64' ? 'F64' : 'F32',
      read: () => {
        const values = this.readSlot(name, slot);
        check?.(name, values);
        return values;
      },
    };
  }

  /** Replaces every parameter from a safetensors file (or its contents, already read); checks names, shapes and dtype first. */
  loadWeights(path: string, { tensors }: SafetensorsFile = readSafetensors(path)): void {
    for (const p of this.params) {
      const t = tensors.get(p.name);
      if (!t) throw new MambalabError(`checkpoint: ${path} has no tensor '${p.name}'`);
      if (t.shape.join() !== p.fileShape.join() && t.shape.join() !== p.shape.join()) {
        throw new MambalabError(`checkpoint: '${p.name}' in ${path} has shape [${t.shape}], the model expects [${p.fileShape}]`);
      }
    }
    const extra = [...tensors.keys()].filter((k) => !this.params.some((p) => p.name === k));
    if (extra.length > 0) throw new MambalabError(`checkpoint: ${path} has tensors this model lacks: ${extra.slice(0, 5).join(', ')}`);
    for (const p of this.params) this.setParameter(p.name, tensors.get(p.name)!.data);
  }
}

export function createModel(config: Partial<ModelConfig> = {}): Model {
  return new Model(config);
}

/**
 * Loads a model saved by model.save(dir); `overrides` move it (e.g. `{ device: 'cpu' }`). Both
 * files are read and checked against each other before the model is allocated, so a damaged
 * config.json is named as such and cannot ask for a model far larger than its weights.
 */
export function loadModel(dir: string, overrides: Partial<Pick<ModelConfig, 'device' | 'dtype' | 'precision' | 'deterministic'>> = {}): Model {
  const configFile = join(dir, CONFIG_FILE);
  const config = readConfigFile(configFile);
  const weightsFile = join(dir, WEIGHTS_FILE);
  const weights = readSafetensors(weightsFile);
  const held = [...weights.tensors.values()].reduce((n, t) => n + t.data.length, 0);
  const expected = countParameters(config).total;
  if (held !== expected) {
    throw new MambalabError(`checkpoint: ${weightsFile} holds ${held} weights, but ${configFile} describes a model of ${expected}: the two files are not from one save`);
  }
  const model = new Model({ ...config, ...overrides });
  model.loadWeights(weightsFile, weights);
  return model;
}

/** A saved config.json, checked as createModel checks a config, its errors naming the file. */
function readConfigFile(file: string): ModelConfig {
  let config: unknown;
  try {
    config = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new MambalabError(`checkpoint: cannot read ${file} (${(e as Error).message})`);
  }
  if (config === null || typeof config !== 'object' || Array.isArray(config)) {
    throw new MambalabError(`checkpoint: ${file} holds ${JSON.stringify(config)}, not a model config object`);
  }
  try {
    return resolveConfig(config);
  } catch (e) {
    throw e instanceof MambalabError ? new MambalabError(`checkpoint: ${file}: ${e.message}`, { cause: e }) : e;
  }
}
