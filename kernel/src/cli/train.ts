// `mambalab train`: trains a preset model on a text corpus and writes the run to --out
// (run-dir.ts), checkpointing as it goes; --resume continues a run from its newest checkpoint.
import { join } from 'node:path';

import { formatCount, lossSpikeWarning } from '@mambalab/contract';

import { loadTextCorpus } from '../corpus/text.js';
import { openDataset } from '../data/dataset.js';
import { isPrepared } from '../data/manifest.js';
import { MambalabError } from '../errors.js';
import { DEVICES, DTYPES, PRECISIONS, resolveConfig } from '../models/config.js';
import { createModel } from '../models/model.js';
import { DEFAULT_KEEP, listCheckpoints, removeCheckpointsAfter } from '../train/checkpoints.js';
import { DEFAULT_MAX_BAD_STEPS } from '../train/guard.js';
import { stepJsonLine, type StepMetrics } from '../train/metrics.js';
import { checkExpertParallel, DEFAULT_RANK_TIMEOUT_S, ranksFromEnv } from '../train/ranks.js';
import { DEFAULT_CHECKPOINT_MINUTES } from '../train/train-run.js';
import { Trainer } from '../train/trainer.js';
import { choiceFlag, intFlag, numberFlag, parseFlags, presetFlags } from './args.js';
import { progressLine } from './progress.js';
import { checkResumable, keepMetricsUpTo, MetricsAppender, refuseExistingRun, startRun } from './run-dir.js';
import { checkGpus, launchRanks } from './train-ranks.js';

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
  --out DIR           where the run goes: config.json, metrics.jsonl, checkpoints/, checkpoint (default runs/<time>)
  --batch-size B, --seq-len L, --lr LR, --warmup N     override the preset's training settings (B rows per optimizer step)
  --grad-accum K      split each step's B rows into K micro-batches whose gradients accumulate (the same update, 1/K of
                      the activation memory; K must divide B). Default: 1, or on the GPU the fewest that fit (said on stderr)
  --eval-every N      validation loss and perplexity every N steps (default: only at the end)
  --eval-tokens T     validation tokens per evaluation, rounded up to whole batches (default: 4 batches)
  --checkpoint-every N        checkpoint every N steps (default 0: not by steps)
  --checkpoint-minutes M      checkpoint when M minutes passed since the last one (default ${DEFAULT_CHECKPOINT_MINUTES}; 0: not by time);
                              training also checkpoints when it ends or is stopped (Ctrl-C, SIGTERM)
  --keep K            checkpoints kept, the newest (default ${DEFAULT_KEEP})
  --resume            continue the run in --out from its newest complete checkpoint (the other flags must match the run's)
  --max-bad-steps N   stop after N consecutive steps with a non-finite loss or gradient norm (default ${DEFAULT_MAX_BAD_STEPS}); such steps
                      are skipped (nothing applied) and reported ("skipped", "nonfinite_steps")
  --ranks N           data parallel on this machine: N processes, each training a replica on its N-th of every batch's
                      rows, their gradients summed before each step (the same steps as one process; B must split into
                      N × K equal parts). Rank 0 writes the run; a rank that fails stops the others. The sums pass
                      through the host (shared memory), on the CPU or one GPU
  --gpus N            data parallel over N GPUs: as --ranks N with --device cuda, rank r on GPU r, gradients summed on
                      the GPUs through NCCL (found as MAMBALAB_NCCL_LIB, libnccl.so.2 or PyTorch's nvidia-nccl wheel)
  --shard-optimizer   with --ranks N or --gpus N (N ≥ 2): each rank keeps AdamW's moments for its N-th of the weights only
                      (ZeRO-1) and updates that share, then the ranks gather the weights: the same bits as without it,
                      in 1/N of the optimizer state per rank. Checkpoints still hold the whole optimizer state
  --expert-parallel   with --ranks N or --gpus N (N ≥ 2), a model with MoE layers whose experts N divides: each rank
                      runs and updates only its N-th of every MoE layer's experts, the ranks exchanging tokens
                      all-to-all; the same steps as without it (bit for bit unless clipping scales a step). Expert
                      counts are the ranks' total. Checkpoints hold the whole model. Not with --shard-optimizer
  --rank-timeout S    seconds a rank waits for the others before it fails saying so (default ${DEFAULT_RANK_TIMEOUT_S})
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
    'grad-accum': { type: 'string' },
    'eval-every': { type: 'string' },
    'eval-tokens': { type: 'string' },
    'checkpoint-every': { type: 'string' },
    'checkpoint-minutes': { type: 'string' },
    keep: { type: 'string' },
    resume: { type: 'boolean', default: false },
    'max-bad-steps': { type: 'string' },
    ranks: { type: 'string' },
    gpus: { type: 'string' },
    'shard-optimizer': { type: 'boolean', default: false },
    'expert-parallel': { type: 'boolean', default: false },
    'rank-timeout': { type: 'string' },
    'log-every': { type: 'string' },
    json: { type: 'boolean', default: false },
  });
  if (f.gpus !== undefined && f.ranks !== undefined) throw new MambalabError('train: --gpus N already starts N ranks (one per GPU): give --gpus or --ranks, not both');
  if (f.gpus !== undefined && f.device !== undefined && f.device !== 'cuda') throw new MambalabError(`train: --gpus trains on GPUs: --device must be cuda or left out, got '${f.device}'`);
  const gpus = f.gpus !== undefined;
  const ranksFlag = gpus ? 'gpus' : 'ranks';
  const world = intFlag(ranksFlag, gpus ? f.gpus : f.ranks, 1, 1);
  const shardOptimizer = f['shard-optimizer']!;
  if (shardOptimizer && world < 2) {
    throw new MambalabError(`train: --shard-optimizer shares the optimizer state among data-parallel ranks: give --ranks N or --gpus N with N ≥ 2${f.ranks ?? f.gpus ? ` (got ${world})` : ''}`);
  }
  const expertParallel = f['expert-parallel']!;
  if (expertParallel && world < 2) {
    throw new MambalabError(`train: --expert-parallel shares each MoE layer's experts among data-parallel ranks: give --ranks N or --gpus N with N ≥ 2${f.ranks ?? f.gpus ? ` (got ${world})` : ''}`);
  }
  if (expertParallel && shardOptimizer) throw new MambalabError('train: --expert-parallel and --shard-optimizer do not combine (ZeRO-1\'s shares would cut across the expert blocks): give one');
  // Before any rank starts (and allocates): experts the ranks cannot share are refused here.
  if (expertParallel) checkExpertParallel(resolveConfig(presetFlags(f.model!, f.size!).config), world);
  const rankTimeoutS = numberFlag('rank-timeout', f['rank-timeout'], DEFAULT_RANK_TIMEOUT_S);
  if (!(rankTimeoutS > 0)) throw new MambalabError(`train: --rank-timeout must be a positive number of seconds, got ${rankTimeoutS}`);
  // Started by --ranks or --gpus: this process is one rank; rank 0 leads (writes the run, speaks).
  const ranks = ranksFromEnv();
  if (world > 1 && !ranks) {
    const batchSize = intFlag('batch-size', f['batch-size'], presetFlags(f.model!, f.size!).training.batchSize, 1);
    if (batchSize % world !== 0) throw new MambalabError(`train: --${ranksFlag} ${world} must divide the batch of ${batchSize} rows (--batch-size)`);
    if (gpus) process.stderr.write(checkGpus(world) + '\n');
    return launchRanks(world, rankTimeoutS, gpus ? 'nccl' : 'shared-memory', shardOptimizer, expertParallel);
  }
  const lead = !ranks || ranks.rank === 0;
  const json = f.json;
  const say = (line: string) => {
    if (lead) process.stderr.write(line + '\n');
  };
  if (!f.data) throw new MambalabError('train: --data is required (a C4 .json.gz file or a directory of them)');
  if (f.resume && !f.out) throw new MambalabError('train: --resume needs --out, the run directory to continue');

  const p = presetFlags(f.model!, f.size!);
  const steps = intFlag('steps', f.steps, 200, 1);
  const seed = intFlag('seed', f.seed, 0);
  const logEvery = intFlag('log-every', f['log-every'], 1, 1);
  const gradAccumulation = f['grad-accum'] === undefined ? undefined : intFlag('grad-accum', f['grad-accum'], 1, 1);
  const training = {
    ...p.training,
    batchSize: intFlag('batch-size', f['batch-size'], p.training.batchSize, 1),
    seqLen: intFlag('seq-len', f['seq-len'], p.training.seqLen, 1),
    lr: numberFlag('lr', f.lr, p.training.lr),
    warmupSteps: intFlag('warmup', f.warmup, Math.min(p.training.warmupSteps, Math.floor(steps / 10))),
    ...(gradAccumulation !== undefined ? { gradAccumulation } : {}),
  };
  const plan = {
    evalEvery: intFlag('eval-every', f['eval-every'], 0),
    ...(f['eval-tokens'] !== undefined ? { evalTokens: intFlag('eval-tokens', f['eval-tokens'], 1, 1) } : {}),
    checkpointEvery: intFlag('checkpoint-every', f['checkpoint-every'], 0),
    checkpointMinutes: numberFlag('checkpoint-minutes', f['checkpoint-minutes'], DEFAULT_CHECKPOINT_MINUTES),
    keep: intFlag('keep', f.keep, DEFAULT_KEEP, 1),
    maxBadSteps: intFlag('max-bad-steps', f['max-bad-steps'], DEFAULT_MAX_BAD_STEPS, 1),
  };
  const engine = {
    device: gpus ? 'cuda' : choiceFlag('device', f.device, DEVICES, 'cpu'),
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
  const trainer = new Trainer(model, { ...training, totalSteps: steps, seed });
  if (trainer.accumulationNote) say(trainer.accumulationNote);
  const out = f.out ?? join('runs', new Date().toISOString().replace(/[:.]/g, '-'));
  const runConfig = (data?: string) => ({ model: model.config, trainer: trainer.options, data, steps, command: 'train', ...plan });
  // What can be checked before a large corpus is read, is.
  if (f.resume) checkResumable(out, runConfig(), ['data']);
  else if (lead) refuseExistingRun(out);
  const data = isPrepared(f.data) ? openDataset(f.data) : loadTextCorpus(f.data);
  const trainStats = data.stats('train');
  say(`data ${data.description}: ${trainStats.tokens.toLocaleString()} train tokens in ${trainStats.documents} documents`);

  // Joined before a checkpoint is loaded, so that a sharded rank takes only its share of the moments.
  if (ranks) {
    await trainer.joinRanks(ranks);
    const summed = ranks.collective === 'nccl' ? 'one per GPU, gradients summed on the GPUs (NCCL)' : 'gradients summed';
    say(`ranks: ${ranks.world} processes, ${training.batchSize / ranks.world} rows of each batch apiece, ${summed} before each step${ranks.shardOptimizer ? ', optimizer state sharded' : ''}${ranks.expertParallel ? `, experts shared (${model.config.numExperts / ranks.world} per MoE layer apiece, tokens exchanged all-to-all)` : ''}`);
  }
  if (f.resume) {
    checkResumable(out, runConfig(data.description));
    if (listCheckpoints(out).length === 0) {
      say(`resume: ${out} has no complete checkpoint yet: training from step 0`);
    } else {
      const from = trainer.loadCheckpoint(out);
      for (const skipped of from.passedOver) say(`resume: passing over ${skipped.dir}: ${skipped.error}`);
      say(`resume: from step ${from.step} (${from.dir})`);
    }
    // What came after the checkpoint is trained again: its metrics lines, and newer checkpoints that did not load.
    if (lead) {
      keepMetricsUpTo(out, trainer.stepCount);
      removeCheckpointsAfter(out, trainer.stepCount);
    }
  } else if (lead) {
    startRun(out, runConfig(data.description));
  }
  const remaining = steps - trainer.stepCount;
  if (remaining <= 0) {
    say(`done: ${out} is trained to step ${trainer.stepCount} of ${steps} already`);
    return;
  }

  // The other ranks take the same steps on their rows; rank 0 records, prints and checkpoints.
  // Sharded (optimizer or experts), they hand their share of each checkpoint over when rank 0
  // writes it (the same fit options, the final checkpoint too), and stop when it stops.
  const checkpointing = { checkpointDir: out, checkpointEvery: plan.checkpointEvery, checkpointMinutes: plan.checkpointMinutes, keepCheckpoints: plan.keep };
  const handsOver = ranks?.shardOptimizer === true || ranks?.expertParallel === true;
  // Expert parallel, every forward is collective: the others evaluate when rank 0 does.
  const evaluating = { evalEvery: plan.evalEvery, evalTokens: plan.evalTokens, initialEval: !f.resume };
  if (!lead) {
    await trainer.fit(data, { steps: remaining, initialEval: false, maxBadSteps: plan.maxBadSteps, ...(handsOver ? checkpointing : {}), ...(ranks?.expertParallel ? evaluating : {}) });
    if (handsOver) trainer.writeCheckpoint(out, { keep: plan.keep });
    return;
  }

  const metrics = new MetricsAppender(out);
  const abort = new AbortController();
  const onSignal = (signal: string) => () => {
    say(`\n${signal}: stopping after this step and saving a checkpoint`);
    abort.abort();
  };
  const onSigint = onSignal('interrupted');
  const onSigterm = onSignal('terminated');
  process.once('SIGINT', onSigint);
  process.once('SIGTERM', onSigterm);
  let warning: string | undefined;
  let toldOptimizer = !ranks;
  const record = (m: StepMetrics) => {
    const line = stepJsonLine(m, model.device);
    if (!toldOptimizer) {
      // Made by the first step: what it holds then is what it keeps.
      const held = ranks?.expertParallel
        ? `its ${model.config.numExperts / ranks.world} of ${model.config.numExperts} experts per MoE layer, the other tensors whole`
        : `as each of the ${ranks?.world} ranks`;
      const share = ranks?.shardOptimizer ? `its share, sharded over ${ranks.world} ranks` : held;
      say(`parameters: ${trainer.parameterBytes.toLocaleString('en-US')} bytes of weights and gradients on rank 0 (${held})`);
      say(`optimizer state: ${trainer.optimizerStateBytes.toLocaleString('en-US')} bytes of AdamW moments on rank 0 (${share})`);
      toldOptimizer = true;
    }
    metrics.append(line);
    if (m.lossSpike !== undefined) warning = lossSpikeWarning(m.step, m.lossSpike);
    if (m.evalLoss !== undefined && !json) say(`${process.stderr.isTTY ? '\n' : ''}step ${m.step}: eval loss ${m.evalLoss.toFixed(4)}, perplexity ${line.eval_ppl!.toFixed(2)}`);
    if (m.step % logEvery !== 0 && m.step !== steps && m.evalLoss === undefined) return;
    if (json) process.stdout.write(JSON.stringify(line) + '\n');
    else if (process.stderr.isTTY) process.stderr.write('\r' + progressLine(m, steps, warning));
    else if (m.step % Math.max(1, Math.floor(steps / 20)) === 0 || m.step === steps || m.skipped) say(progressLine(m, steps, warning));
  };
  try {
    const result = await trainer.fit(data, {
      steps: remaining,
      onStep: record,
      ...evaluating,
      signal: abort.signal,
      ...checkpointing,
      maxBadSteps: plan.maxBadSteps,
      beforeCheckpoint: () => metrics.sync(),
    });
    metrics.sync();
    trainer.writeCheckpoint(out, { keep: plan.keep });
    if (!json && process.stderr.isTTY) process.stderr.write('\n');
    const last = result.history[result.history.length - 1];
    const loss = (x: number) => (Number.isFinite(x) ? x.toFixed(3) : '–');
    const evalLoss = f.resume ? loss(result.finalEvalLoss) : `${loss(result.initialEvalLoss)} → ${loss(result.finalEvalLoss)}`;
    say(
      `${result.stopped ? 'stopped' : 'done'} at step ${trainer.stepCount}: eval loss ${evalLoss}` +
        (last ? `, ${formatCount(last.tokens / last.elapsedS)} tok/s` : '') +
        (trainer.nonfiniteSteps > 0 ? `, ${trainer.nonfiniteSteps} non-finite steps skipped` : '') +
        `; run in ${out}`,
    );
  } finally {
    metrics.close();
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigterm);
  }
}
