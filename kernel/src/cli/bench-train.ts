// `mambalab bench train`: steady-state training throughput of a preset on random tokens
// (speed does not depend on token values), after warm-up steps.
import { cpus } from 'node:os';

import { MambalabError } from '../errors.js';
import { trainingFlopsPerToken } from '../models/flops.js';
import { createModel } from '../models/model.js';
import { preset } from '../models/presets.js';
import { Trainer } from '../train/trainer.js';
import { intFlag, parseFlags } from './args.js';

export const benchTrainUsage = `  --model NAME --size NAME   the preset (default mamba tiny)
  --device DEV               cpu | cuda | auto (default cpu)
  --batch-size B --seq-len L override the preset's batch
  --warmup N --steps N       untimed then timed steps (default 3, 10)`;

export async function benchTrain(argv: string[], log: (line: string) => void) {
  const { values: f } = parseFlags('bench train', argv, {
    model: { type: 'string', default: 'mamba' },
    size: { type: 'string', default: 'tiny' },
    device: { type: 'string', default: 'cpu' },
    'batch-size': { type: 'string' },
    'seq-len': { type: 'string' },
    warmup: { type: 'string' },
    steps: { type: 'string' },
  });
  const p = preset(f.model!, f.size!);
  const batchSize = intFlag('batch-size', f['batch-size'], p.training.batchSize, 1);
  const seqLen = intFlag('seq-len', f['seq-len'], p.training.seqLen, 1);
  const warmup = intFlag('warmup', f.warmup, 3);
  const steps = intFlag('steps', f.steps, 10, 1);
  if (!['cpu', 'cuda', 'auto'].includes(f.device!)) throw new MambalabError(`--device: expected cpu, cuda or auto, got '${f.device}'`);

  const model = createModel({ ...p.config, device: f.device as 'cpu', seed: 0 });
  const trainer = new Trainer(model, { ...p.training, batchSize, seqLen, totalSteps: warmup + steps });
  const vocab = model.config.vocabSize;
  let state = 12345;
  const tokens = new Int32Array(batchSize * (seqLen + 1)).map(() => (state = (Math.imul(state, 1103515245) + 12345) >>> 0) % vocab);
  const batch = { tokens, batchSize, seqLen };
  log(`bench train: ${f.model}/${f.size} on ${model.device}, batch ${batchSize} × ${seqLen}, ${warmup} warm-up + ${steps} timed steps`);
  for (let i = 0; i < warmup; i++) await trainer.step(batch);
  const started = performance.now();
  for (let i = 0; i < steps; i++) await trainer.step(batch);
  const seconds = (performance.now() - started) / 1000;

  const tokensPerS = (steps * batchSize * seqLen) / seconds;
  const flopsPerToken = trainingFlopsPerToken(model.config);
  const cpu = cpus()[0]?.model.trim() ?? 'unknown CPU';
  return {
    name: `train-${f.model}-${f.size}`,
    gpu: model.device === 'cpu' ? `none (CPU: ${cpu}, ${cpus().length} threads)` : model.device,
    device: model.device,
    date: new Date().toISOString().slice(0, 10),
    model: f.model,
    size: f.size,
    params_non_embedding: model.parameterCount().nonEmbedding,
    batch_size: batchSize,
    seq_len: seqLen,
    steps,
    tokens_per_s: tokensPerS,
    step_ms: (seconds * 1000) / steps,
    // Resident memory high-water mark of this process (the CPU backend's "device" memory).
    peak_mem_gib: process.resourceUsage().maxRSS / 2 ** 20,
    flops_per_token: flopsPerToken,
    achieved_tflops: (tokensPerS * flopsPerToken) / 1e12,
    // Utilisation needs the device's peak rate; only GPU runs report it.
    mfu: null,
  };
}
