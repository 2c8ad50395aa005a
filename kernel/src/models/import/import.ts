// `importCheckpoint(from, out)`: a published checkpoint (transformers' MambaForCausalLM,
// mamba_ssm's MambaLMHeadModel, Zyphra's BlackMamba) from local files into a directory that
// loadModel reads. Everything is checked (architecture, every config field that shapes the
// model, every tensor's name and shape) before a byte is written; the output is written into
// a temporary directory beside `out` and renamed into place, so a failure at any point leaves
// no half-written model, and an existing model at `out` is never replaced.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

import { MambalabError } from '../../errors.js';
import { fsyncPath } from '../../files.js';
import { resolveConfig, type ModelConfig } from '../config.js';
import { CONFIG_FILE, WEIGHTS_FILE } from '../model.js';
import { countParameters } from '../params.js';
import { writeSafetensors } from '../safetensors.js';
import { isBlackMamba, planBlackMamba, BLACKMAMBA_STATE_KEY } from './blackmamba.js';
import { isHfMamba, planHfMamba } from './hf-mamba.js';
import { isMambaSsm, planMambaSsm } from './mamba-ssm.js';
import { ConfigFields, type ImportFormat, type ImportPlan } from './plan.js';
import { readSafetensorsSource, SAFETENSORS_FILE, SAFETENSORS_INDEX } from './safetensors-source.js';
import type { TensorSource } from './source.js';
import { readTorchCheckpoint } from './torch-pickle.js';

export const TORCH_FILE = 'pytorch_model.bin';
/** What the import read and how: written beside the model. */
export const IMPORT_FILE = 'import.json';

export interface ImportResult {
  format: ImportFormat;
  /** The imported model's config, as written to out/config.json. */
  config: ModelConfig;
  out: string;
  /** The tokenizer the checkpoint was trained with (loadTokenizer's name). */
  tokenizer: string;
  parameters: number;
}

function readConfigJson(dir: string): ConfigFields {
  const file = join(dir, 'config.json');
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new MambalabError(`import: ${dir} is not a directory (expected a checkpoint's config.json and weights)`);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new MambalabError(`import: cannot read ${file} (${(e as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new MambalabError(`import: ${file} holds ${JSON.stringify(json)?.slice(0, 80)}, not a config object`);
  return new ConfigFields(file, json as Record<string, unknown>);
}

/** The checkpoint's weights: safetensors (single or sharded) where present, else pytorch_model.bin. */
function openWeights(dir: string, stateKey?: string): TensorSource {
  if (existsSync(join(dir, SAFETENSORS_FILE)) || existsSync(join(dir, SAFETENSORS_INDEX))) return readSafetensorsSource(dir);
  if (existsSync(join(dir, TORCH_FILE))) return readTorchCheckpoint(join(dir, TORCH_FILE), stateKey);
  throw new MambalabError(`import: ${dir} holds no weights (${SAFETENSORS_FILE}, ${SAFETENSORS_INDEX} or ${TORCH_FILE})`);
}

/** Which format config.json describes, and its plan; an architecture we do not import is named. */
export function planImport(from: string): ImportPlan {
  const c = readConfigJson(from);
  if (isBlackMamba(c.json)) return planBlackMamba(c, openWeights(from, BLACKMAMBA_STATE_KEY));
  if (isHfMamba(c.json)) return planHfMamba(c, openWeights(from));
  if (isMambaSsm(c.json)) return planMambaSsm(c, openWeights(from));
  const architectures = c.json['architectures'] ?? c.json['model_type'];
  throw new MambalabError(
    `import: ${c.file} describes ${architectures === undefined ? 'an architecture it does not name' : `the architecture ${JSON.stringify(architectures)}`}; mambalab imports transformers' MambaForCausalLM, mamba_ssm's MambaLMHeadModel (d_model, n_layer) and BlackMamba (mamba_moe_layers)`,
  );
}

function checkOut(out: string): void {
  if (!existsSync(out)) return;
  if (!statSync(out).isDirectory()) throw new MambalabError(`import: --out ${out} is a file; give a new directory`);
  if (readdirSync(out).length > 0) throw new MambalabError(`import: --out ${out} is not empty; the import writes a new directory and replaces nothing`);
}

/** Imports the checkpoint in `from` into the new directory `out` (config.json, model.safetensors, import.json). */
export function importCheckpoint(from: string, out: string): ImportResult {
  checkOut(out);
  const plan = planImport(from);
  let config: ModelConfig;
  try {
    config = resolveConfig(plan.config);
  } catch (e) {
    throw new MambalabError(`import: ${from} maps to a config mambalab refuses: ${(e as Error).message}`, { cause: e });
  }
  const held = plan.tensors.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
  const expected = countParameters(config).total;
  if (held !== expected) throw new Error(`import (${plan.format}): mapped ${held} weights for a model of ${expected}: the importer and the model disagree`);

  const tmp = join(dirname(resolve(out)), `.${basename(out)}.tmp-import-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    const lazy = plan.tensors.map((t) => ({ name: t.name, shape: t.shape, dtype: 'F32' as const, read: () => t.read() }));
    writeSafetensors(join(tmp, WEIGHTS_FILE), lazy, { format: 'pt', mambalab_config: JSON.stringify(config), imported_from: plan.format });
    writeFileSync(join(tmp, CONFIG_FILE), JSON.stringify(config, null, 2) + '\n');
    const record = { format: plan.format, from: resolve(from), source: resolve(plan.source), tokenizer: plan.tokenizer, parameters: held };
    writeFileSync(join(tmp, IMPORT_FILE), JSON.stringify(record, null, 2) + '\n');
    for (const file of [CONFIG_FILE, IMPORT_FILE]) fsyncPath(join(tmp, file));
    fsyncPath(tmp);
    checkOut(out); // nothing appeared there meanwhile
    if (existsSync(out)) rmdirSync(out);
    renameSync(tmp, out);
    fsyncPath(dirname(resolve(out)));
  } catch (error) {
    rmSync(tmp, { recursive: true, force: true });
    throw error;
  }
  return { format: plan.format, config, out, tokenizer: plan.tokenizer, parameters: held };
}
