// `mambalab train`: trains a preset model on a text corpus and writes the run to --out.
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { formatCount } from '@mambalab/contract';

import { loadTextCorpus } from '../corpus/text.js';
import { openDataset } from '../data/dataset.js';
import { isPrepared } from '../data/manifest.js';
import { MambalabError } from '../errors.js';
import { DEVICES, DTYPES, PRECISIONS } from '../models/config.js';
import { createModel } from '../models/model.js';
import { stepJsonLine, type StepMetrics } from '../train/metrics.js';
import { Trainer } from '../train/trainer.js';
import { choiceFlag, intFlag, numberFlag, parseFlags, presetFlags } from './args.js';
import { progressLine } from './progress.js';

export const usage = `mambalab train --model mamba --size tiny --steps N --data <file.json.gz|dir> [options]
  --model NAME        mamba | mamba-mlp | moe-mamba | parallel-moe-mamba | blackmamba | transformer | transformer-moe | jamba
  --size NAME         preset size: tiny for each; small, v1 (the MoE-Mamba paper's); 340m-1.5b, 630m-2.8b (BlackMamba); 410m-1.6b (jamba)
  --steps N           optimizer steps (default 200)
  --data PATH         a prepared dataset (mambalab data prepare), or raw JSON lines (.json.gz, .jsonl, .jsonl.zst; a file
                      or a directory), read and checked as data prepare reads them
  --device DEV        cpu | cuda | auto (default cpu; auto: CUDA when there is a GPU, says which on stderr)
  --precision P       bf16 | fp32: GPU compute (default bf16, fp32 master weights either way); the CPU computes in --dtype
  --deterministic     no atomics: two runs with the same seed are bit-identical
  --dtype T           float32 | float64 (default float32; float64 on the CPU only)
  --seed S            seed of the weights and the batch order (default 0)
  --out DIR           where the run goes: config.json, metrics.jsonl, checkpoint/ (default runs/<time>)
  --batch-size B, --seq-len L, --lr LR, --warmup N     override the preset's training settings
  --eval-every N      validation loss every N steps (default: only at the end)
  --log-every N       log every N steps (default 1)
  --json              one JSON line per logged step on stdout, nothing else there (with "device": cpu or cuda)
                      (with MoE layers, "experts": tokens per expert per layer, and "dropped")`;

export async function train(argv: string[]): Promise<void> {
  const { values: f } = parseFlags('train', argv, {
    model: { type: 'string', default: 'mamba' },
    size: { type: 'string', default: 'tiny' },
    steps: { type: 'string' },
    data: { type: 'string' },
    device: { type: 'string' },
    precision: { type: 'string' },
    deterministic: { type: 'boolean', default: false },
    dtype: { type: 'string' },
    seed: { type: 'string' },
    out: { type: 'string' },
    'batch-size': { type: 'string' },
    'seq-len': { type: 'string' },
    lr: { type: 'string' },
    warmup: { type: 'string' },
    'eval-every': { type: 'string' },
    'log-every': { type: 'string' },
    json: { type: 'boolean', default: false },
  });
  const json = f.json;
  const say = (line: string) => process.stderr.write(line + '\n');
  if (!f.data) throw new MambalabError('train: --data is required (a C4 .json.gz file or a directory of them)');

  const p = presetFlags(f.model!, f.size!);
  const steps = intFlag('steps', f.steps, 200, 1);
  const seed = intFlag('seed', f.seed, 0);
  const logEvery = intFlag('log-every', f['log-every'], 1, 1);
  const training = {
    ...p.training,
    batchSize: intFlag('batch-size', f['batch-size'], p.training.batchSize, 1),
    seqLen: intFlag('seq-len', f['seq-len'], p.training.seqLen, 1),
    lr: numberFlag('lr', f.lr, p.training.lr),
    warmupSteps: intFlag('warmup', f.warmup, Math.min(p.training.warmupSteps, Math.floor(steps / 10))),
  };
  const engine = {
    device: choiceFlag('device', f.device, DEVICES, 'cpu'),
    dtype: choiceFlag('dtype', f.dtype, DTYPES, 'float32'),
    precision: choiceFlag('precision', f.precision, PRECISIONS, 'bf16'),
    deterministic: f.deterministic,
  };

  // The model first: a device it cannot have is reported before a large corpus is read.
  const model = createModel({ ...p.config, seed, ...engine });
  if (model.config.device === 'auto') say(`device ${model.deviceNote}`);
  const counts = model.parameterCount();
  const active = counts.active === counts.nonEmbedding ? '' : ` (${Math.round(counts.active).toLocaleString()} active per token)`;
  const on = model.device === 'cuda' ? `cuda (${model.computePrecision}${model.config.deterministic ? ', deterministic' : ''})` : model.device;
  say(`model ${f.model}/${f.size} on ${on}: ${counts.nonEmbedding.toLocaleString()} parameters${active} + ${counts.embedding.toLocaleString()} embedding (pattern ${model.config.pattern}, d_model ${model.config.dModel})`);
  const data = isPrepared(f.data) ? openDataset(f.data) : loadTextCorpus(f.data);
  const trainStats = data.stats('train');
  say(`data ${data.description}: ${trainStats.tokens.toLocaleString()} train tokens in ${trainStats.documents} documents`);

  const trainer = new Trainer(model, { ...training, totalSteps: steps, seed });
  const out = f.out ?? join('runs', new Date().toISOString().replace(/[:.]/g, '-'));
  mkdirSync(out, { recursive: true });
  const runConfig = { model: model.config, trainer: trainer.options, data: data.description, steps, command: 'train' };
  writeFileSync(join(out, 'config.json'), JSON.stringify(runConfig, null, 2) + '\n');
  const metricsFile = join(out, 'metrics.jsonl');
  writeFileSync(metricsFile, '');

  const abort = new AbortController();
  const onSigint = () => {
    say('\ninterrupted: stopping after this step and saving a checkpoint');
    abort.abort();
  };
  process.once('SIGINT', onSigint);
  const record = (m: StepMetrics) => {
    const line = stepJsonLine(m, model.device);
    appendFileSync(metricsFile, JSON.stringify(line) + '\n');
    if (m.step % logEvery !== 0 && m.step !== steps && m.evalLoss === undefined) return;
    if (json) process.stdout.write(JSON.stringify(line) + '\n');
    else if (process.stderr.isTTY) process.stderr.write('\r' + progressLine(m.step, steps, m.loss, m.tokensPerS, m.elapsedS));
    else if (m.step % Math.max(1, Math.floor(steps / 20)) === 0 || m.step === steps) say(progressLine(m.step, steps, m.loss, m.tokensPerS, m.elapsedS));
  };
  try {
    const result = await trainer.fit(data, {
      steps,
      onStep: record,
      evalEvery: intFlag('eval-every', f['eval-every'], 0),
      signal: abort.signal,
    });
    trainer.saveCheckpoint(join(out, 'checkpoint'));
    if (!json && process.stderr.isTTY) process.stderr.write('\n');
    const last = result.history[result.history.length - 1];
    say(
      `${result.stopped ? 'stopped' : 'done'} after ${result.steps} steps: eval loss ${result.initialEvalLoss.toFixed(3)} → ${result.finalEvalLoss.toFixed(3)}` +
        (last ? `, ${formatCount(last.tokens / last.elapsedS)} tok/s` : '') +
        `; run in ${out}`,
    );
  } finally {
    process.off('SIGINT', onSigint);
  }
}
