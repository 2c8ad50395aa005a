// `mambalab eval`: a saved model's loss and perplexity on the validation split of a dataset.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { loadTextCorpus } from '../corpus/text.js';
import { openDataset } from '../data/dataset.js';
import { isPrepared } from '../data/manifest.js';
import { MambalabError } from '../errors.js';
import { DEVICES, PRECISIONS } from '../models/config.js';
import { loadModel } from '../models/model.js';
import { newestCheckpoint, TRAINER_FILE } from '../train/checkpoints.js';
import { evaluateModel } from '../train/evaluate.js';
import { DEFAULT_TRAINER_OPTIONS } from '../train/trainer.js';
import { choiceFlag, intFlag, parseFlags } from './args.js';

export const usage = `mambalab eval --model <dir> --data <file.json.gz|dir> [options]
  --model DIR         a run directory (its newest complete checkpoint), a checkpoint, or a saved model (config.json + model.safetensors)
  --data PATH         a prepared dataset or raw JSON lines, as for train: its validation split is evaluated
  --eval-tokens T     validation tokens, rounded up to whole batches (default: 4 batches)
  --batch-size B, --seq-len L   the batches' shape (default: a checkpoint's training micro-batch, else 8 × 128)
  --device DEV        cpu | cuda | auto (default: the device the model was saved with)
  --precision P       bf16 | fp32 on the GPU (default: as saved)
  --json              one JSON object on stdout: loss, perplexity, tokens, step, device`;

/** The model directory `dir` names: itself, or the newest checkpoint of a run in it. */
function modelDir(dir: string): { dir: string; step?: number } {
  const newest = newestCheckpoint(dir);
  if (newest) return newest;
  if (!existsSync(join(dir, 'model.safetensors'))) {
    throw new MambalabError(`eval: ${dir} holds no model (no model.safetensors) and no checkpoint (no checkpoints/step-*)`);
  }
  return { dir };
}

/** The training shape a checkpoint's trainer.json records: its micro-batch, which fitted in memory. */
function trainedShape(dir: string): { rows: number; seqLen: number; step?: number } | undefined {
  const file = join(dir, TRAINER_FILE);
  if (!existsSync(file)) return undefined;
  try {
    const state = JSON.parse(readFileSync(file, 'utf8')) as { step?: number; options?: { batchSize?: number; seqLen?: number; gradAccumulation?: number } };
    const o = { ...DEFAULT_TRAINER_OPTIONS, ...state.options };
    return { rows: o.batchSize / o.gradAccumulation, seqLen: o.seqLen, step: state.step };
  } catch (e) {
    throw new MambalabError(`eval: cannot read ${file} (${(e as Error).message})`);
  }
}

export async function evaluate(argv: string[]): Promise<void> {
  const { values: f } = parseFlags('eval', argv, {
    model: { type: 'string' },
    data: { type: 'string' },
    'eval-tokens': { type: 'string' },
    'batch-size': { type: 'string' },
    'seq-len': { type: 'string' },
    device: { type: 'string' },
    precision: { type: 'string' },
    json: { type: 'boolean', default: false },
  });
  if (!f.model) throw new MambalabError('eval: --model is required (a run directory, a checkpoint or a saved model)');
  if (!f.data) throw new MambalabError('eval: --data is required (a prepared dataset or raw JSON lines)');
  const found = modelDir(f.model);
  const trained = trainedShape(found.dir);
  const batchSize = intFlag('batch-size', f['batch-size'], trained?.rows ?? DEFAULT_TRAINER_OPTIONS.batchSize, 1);
  const seqLen = intFlag('seq-len', f['seq-len'], trained?.seqLen ?? DEFAULT_TRAINER_OPTIONS.seqLen, 1);
  const tokens = f['eval-tokens'] === undefined ? undefined : intFlag('eval-tokens', f['eval-tokens'], 1, 1);
  const overrides = {
    ...(f.device !== undefined ? { device: choiceFlag('device', f.device, DEVICES, 'cpu') } : {}),
    ...(f.precision !== undefined ? { precision: choiceFlag('precision', f.precision, PRECISIONS, 'bf16') } : {}),
  };

  const model = loadModel(found.dir, overrides);
  const data = isPrepared(f.data) ? openDataset(f.data) : loadTextCorpus(f.data);
  if (data.vocabSize > model.config.vocabSize) {
    throw new MambalabError(`eval: the data's vocabulary (${data.vocabSize}) is larger than the model's (${model.config.vocabSize})`);
  }
  const result = await evaluateModel(model, data, { batchSize, seqLen, microBatches: 1 }, { tokens });
  const step = found.step ?? trained?.step;
  if (f.json) {
    const line = { model: found.dir, ...(step !== undefined ? { step } : {}), data: data.description, split: 'validation', ...result, device: model.device };
    process.stdout.write(JSON.stringify(line) + '\n');
    return;
  }
  const at = step !== undefined ? ` (step ${step})` : '';
  process.stdout.write(
    `${found.dir}${at} on ${data.description}, validation: loss ${result.loss.toFixed(4)}, perplexity ${result.perplexity.toFixed(2)} over ${result.tokens.toLocaleString()} tokens (${model.device})\n`,
  );
}
