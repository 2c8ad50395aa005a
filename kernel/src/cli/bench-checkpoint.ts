// `mambalab bench checkpoint`: what long runs pay for surviving. How long a checkpoint of a
// preset takes to write (atomically: temporary directory, fsync, rename) and to load, and what the
// non-finite guard costs a step: the engine decides on the device (no host synchronisation of its
// own: `skipped` comes back with the metrics every step reads anyway), the trainer counts on the
// host; a step the guard skips is timed too.
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { native } from '../native.js';
import { StepGuard } from '../train/guard.js';
import { Trainer } from '../train/trainer.js';
import { intFlag, parseFlags } from './args.js';
import { BENCH_MODEL_FLAGS, benchedModel, benchModel } from './bench-train.js';

export const benchCheckpointUsage = `  --model NAME --size NAME   the preset (default blackmamba; size tiny on the CPU, on CUDA as bench train: 340m-1.5b at 8 × 2048)
  --device DEV               cpu | cuda | auto (default cpu)
  --precision P              bf16 | fp32 on CUDA (default bf16)
  --deterministic            no atomics
  --batch-size B --seq-len L override the batch
  --steps N                  timed steps for the guard's cost (default 10, after 3 warm-up steps)
  --repeats N                checkpoints written and loaded (default 2; one on disk at a time)
  --dir DIR                  where they are written (default: the system's temporary directory)`;

function bytesUnder(dir: string): number {
  return readdirSync(dir, { withFileTypes: true }).reduce((n, e) => n + (e.isDirectory() ? bytesUnder(join(dir, e.name)) : statSync(join(dir, e.name)).size), 0);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

export async function benchCheckpoint(argv: string[], log: (line: string) => void) {
  const { values: f } = parseFlags('bench checkpoint', argv, { ...BENCH_MODEL_FLAGS, steps: { type: 'string' }, repeats: { type: 'string' }, dir: { type: 'string' } });
  const { family, size, preset: p, model, batch } = benchModel(f, 'blackmamba');
  const { tokens, batchSize, seqLen } = batch;
  const steps = intFlag('steps', f.steps, 10, 1);
  const repeats = intFlag('repeats', f.repeats, 2, 1);
  const trainer = new Trainer(model, { ...p.training, batchSize, seqLen, totalSteps: 1000 });
  const o = trainer.options;
  const optimizer = { beta1: o.beta1, beta2: o.beta2, eps: o.eps, weightDecay: o.weightDecay, gradClip: o.gradClip };
  log(`bench checkpoint: ${family}/${size} on ${model.deviceNote}, ${model.computePrecision}, batch ${batchSize} × ${seqLen}`);
  for (let i = 0; i < 3; i++) await trainer.step(batch);

  // The same steps through the engine alone and through the trainer (its guard's host side on
  // top), taken in turns so that drift in the machine's speed falls on both.
  const bare = { ms: [] as number[], graphs: 0 };
  const guarded = { ms: [] as number[], graphs: 0 };
  const time = async (into: typeof bare, step: () => Promise<{ cudaGraph: boolean }>) => {
    const t = performance.now();
    if ((await step()).cudaGraph) into.graphs++;
    into.ms.push(performance.now() - t);
  };
  for (let i = 0; i < steps; i++) {
    await time(bare, () => model.engine.trainStep(tokens, batchSize, seqLen + 1, 1e-4, optimizer, o.gradAccumulation));
    await time(guarded, () => trainer.step(batch));
  }
  // A step the guard skips: one weight made NaN for it, then put back.
  const poisoned = 'backbone.norm_f.weight';
  const weight = model.getParameter(poisoned);
  model.setParameter(poisoned, weight.map(() => Number.NaN));
  const t = performance.now();
  const skipped = await trainer.step(batch);
  const skippedMs = performance.now() - t;
  model.setParameter(poisoned, weight);

  // The host side of the guard alone, per step: counting and the running average.
  const guard = new StepGuard();
  const calls = 1_000_000;
  const guardStart = performance.now();
  for (let i = 0; i < calls; i++) guard.observe(3 + (i % 7) * 0.01, i % 1000 === 0);
  const guardUs = ((performance.now() - guardStart) * 1000) / calls;

  const writeS: number[] = [];
  const loadS: number[] = [];
  let bytes = 0;
  for (let r = 0; r < repeats; r++) {
    const root = mkdtempSync(join(f.dir ?? tmpdir(), 'mambalab-bench-checkpoint-'));
    try {
      let start = performance.now();
      const dir = trainer.writeCheckpoint(root, { keep: 1 });
      writeS.push((performance.now() - start) / 1000);
      bytes = bytesUnder(dir);
      start = performance.now();
      trainer.loadCheckpoint(root);
      loadS.push((performance.now() - start) / 1000);
      log(`checkpoint ${r + 1}/${repeats}: ${(bytes / 2 ** 30).toFixed(2)} GiB written in ${writeS.at(-1)!.toFixed(2)} s, loaded in ${loadS.at(-1)!.toFixed(2)} s`);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }
  return {
    name: `checkpoint-${family}-${size}`,
    gpu: model.device === 'cuda' ? native().info().gpu.name : 'none',
    ...benchedModel(model, family, size),
    params_total: model.parameterCount().total,
    batch_size: batchSize,
    seq_len: seqLen,
    grad_accumulation: o.gradAccumulation,
    checkpoint_bytes: bytes,
    checkpoint_write_s: writeS,
    checkpoint_write_gib_per_s: bytes / 2 ** 30 / median(writeS),
    checkpoint_load_s: loadS,
    engine_step_ms: median(bare.ms),
    trainer_step_ms: median(guarded.ms),
    guard_host_ms_per_step: median(guarded.ms) - median(bare.ms),
    guard_bookkeeping_us_per_step: guardUs,
    cuda_graph_steps: { engine: bare.graphs, trainer: guarded.graphs, of: steps },
    skipped_step_ms: skippedMs,
    skipped_step: { skipped: skipped.skipped, cuda_graph: skipped.cudaGraph },
    guard_note:
      'the engine cannot run without its guard: the non-finite test is one isfinite() in the gradient-norm kernel and one per AdamW block, ' +
      'on the device; `skipped` comes back with the metrics every step already reads, so no step waits on the host for it. ' +
      'guard_host_ms_per_step is the trainer (guard bookkeeping, metrics) over the bare engine step, medians of the timed steps; ' +
      'guard_bookkeeping_us_per_step is the guard alone (StepGuard.observe), timed over a million calls.',
  };
}
