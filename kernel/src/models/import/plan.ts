// What every importer produces, and the checks they share: a mambalab config and, for each of
// its parameters, where the values come from. Names and shapes are checked here, before any
// file is written; values are read only when the output is written.
import { MambalabError } from '../../errors.js';
import type { TokenizerName } from '../../corpus/tokenizer.js';
import type { ModelConfig } from '../config.js';
import { numel, shortName, type SourceTensor, type TensorSource } from './source.js';

export const IMPORT_FORMATS = ['hf-mamba', 'mamba-ssm', 'blackmamba'] as const;
export type ImportFormat = (typeof IMPORT_FORMATS)[number];

/** One mambalab parameter: its name and checkpoint shape, and how to read its float32 values. */
export interface ImportedTensor {
  name: string;
  shape: number[];
  read(): Float32Array;
}

export interface ImportPlan {
  format: ImportFormat;
  config: Partial<ModelConfig>;
  tensors: ImportedTensor[];
  /** The tokenizer the checkpoint was trained with, as loadTokenizer names it. */
  tokenizer: TokenizerName;
  /** The weight file(s) read. */
  source: string;
}

/** A config.json read as an object, its fields looked up with their types checked. */
export class ConfigFields {
  constructor(
    readonly file: string,
    readonly json: Record<string, unknown>,
  ) {}

  private bad(field: string, expected: string): never {
    throw new MambalabError(`import: ${this.file}: field ${field} is ${JSON.stringify(this.json[field])}, expected ${expected}`);
  }

  has(field: string): boolean {
    return this.json[field] !== undefined && this.json[field] !== null;
  }

  int(field: string, fallback?: number, min = 1): number {
    if (!this.has(field)) {
      if (fallback === undefined) throw new MambalabError(`import: ${this.file} has no field ${field}`);
      return fallback;
    }
    const v = this.json[field];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) this.bad(field, `an integer ≥ ${min}`);
    return v as number;
  }

  number(field: string, fallback: number): number {
    if (!this.has(field)) return fallback;
    const v = this.json[field];
    if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) this.bad(field, 'a positive number');
    return v as number;
  }

  bool(field: string, fallback: boolean): boolean {
    if (!this.has(field)) return fallback;
    const v = this.json[field];
    if (typeof v !== 'boolean') this.bad(field, 'true or false');
    return v as boolean;
  }

  string(field: string, fallback: string): string {
    if (!this.has(field)) return fallback;
    const v = this.json[field];
    if (typeof v !== 'string') this.bad(field, 'a string');
    return v as string;
  }

  /** A field whose value mambalab cannot represent exactly: refused, saying why. */
  refuse(field: string, why: string): never {
    const value = this.has(field) ? JSON.stringify(this.json[field]) : '(absent, so its default)';
    throw new MambalabError(`import: ${this.file}: ${field} ${value} ${why}; mambalab cannot represent this checkpoint exactly, so it is not imported`);
  }
}

/** The source's tensors, each taken at most once with its shape checked; leftovers are an error. */
export class Tensors {
  private readonly taken = new Set<string>();

  constructor(readonly source: TensorSource) {}

  get file(): string {
    return this.source.file;
  }

  has(name: string): boolean {
    return this.source.tensors.has(name);
  }

  take(name: string, shape: readonly number[]): SourceTensor {
    const t = this.source.tensors.get(name);
    if (!t) throw new MambalabError(`import: ${this.file} has no tensor ${name} (expected shape [${shape}])`);
    if (t.shape.join() !== shape.join()) throw new MambalabError(`import: tensor ${name} in ${this.file} has shape [${t.shape}], expected [${shape}]`);
    this.taken.add(name);
    return t;
  }

  /** Marks a tensor read without mapping it (a tied copy of another). */
  drop(name: string): void {
    this.taken.add(name);
  }

  /** Refuses tensors no mapping used: they are weights mambalab's model would not have. */
  checkAllTaken(why: string): void {
    const left = [...this.source.tensors.keys()].filter((name) => !this.taken.has(name));
    if (left.length > 0) {
      throw new MambalabError(`import: ${this.file} holds tensors mambalab's model has no place for: ${left.slice(0, 6).map(shortName).join(', ')}${left.length > 6 ? ` and ${left.length - 6} more` : ''} (${why})`);
    }
  }
}

export function copied(name: string, from: SourceTensor, shape: number[] = from.shape): ImportedTensor {
  return { name, shape, read: () => from.read() };
}

export function zeros(name: string, shape: number[]): ImportedTensor {
  return { name, shape, read: () => new Float32Array(numel(shape)) };
}

/** Whether a tensor stored apart from the embedding holds the same values (an LM head tied by value). */
export function sameValues(a: SourceTensor, b: SourceTensor): boolean {
  if (a.storage === b.storage) return true;
  const x = a.read();
  const y = b.read();
  return x.length === y.length && x.every((v, i) => Object.is(v, y[i]));
}

/** Mamba mixer sizes, as mamba_ssm derives them. */
export interface MixerDims {
  dModel: number;
  dInner: number;
  dtRank: number;
  dState: number;
  dConv: number;
}

/**
 * The Mamba mixer's tensors under `from` (every format here uses mamba_ssm's names) as
 * mambalab's under `to`; a mixer built without a conv bias gets zeros, which compute the same.
 */
export function mixerTensors(t: Tensors, from: string, to: string, m: MixerDims, convBias: boolean): ImportedTensor[] {
  const { dModel: d, dInner: di, dtRank: r, dState: n, dConv: k } = m;
  const shapes: [string, number[]][] = [
    ['in_proj.weight', [2 * di, d]],
    ['conv1d.weight', [di, 1, k]],
    ['x_proj.weight', [r + 2 * n, di]],
    ['dt_proj.weight', [di, r]],
    ['dt_proj.bias', [di]],
    ['A_log', [di, n]],
    ['D', [di]],
    ['out_proj.weight', [d, di]],
  ];
  const out = shapes.map(([name, shape]) => copied(to + name, t.take(from + name, shape)));
  out.push(convBias ? copied(`${to}conv1d.bias`, t.take(`${from}conv1d.bias`, [di])) : zeros(`${to}conv1d.bias`, [di]));
  return out;
}

/**
 * The padding multiple that makes mambalab's embedding exactly `rows` rows for `vocab` ids:
 * the largest of 64, 8 and 1 that divides it, when the vocabulary is already padded.
 */
export function padMultipleFor(vocab: number, rows: number, file: string, name: string): number {
  if (rows !== vocab) throw new MambalabError(`import: tensor ${name} in ${file} has ${rows} rows, but the config's vocabulary pads to ${vocab}`);
  return [64, 8, 1].find((m) => vocab % m === 0)!;
}

/** A pattern string for a list of layer kinds: "ME*18" when it repeats, else the letters. */
export function patternOf(kinds: string[]): string {
  for (let unit = 1; unit <= kinds.length / 2; unit++) {
    if (kinds.length % unit) continue;
    const head = kinds.slice(0, unit).join('');
    if (kinds.every((k, i) => k === kinds[i % unit])) return `${head}*${kinds.length / unit}`;
  }
  return kinds.join('');
}
