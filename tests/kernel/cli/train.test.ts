import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { loadModel } from '../../../kernel/src/models/model.js';
import { native } from '../../../kernel/src/native.js';
import { C4_SAMPLE, repoRoot, scratchDir } from '../../helpers.js';

const cli = join(repoRoot, 'kernel', 'src', 'cli', 'main.ts');
const gpu = native().info().gpu;
const noGpuHere = gpu.deviceCount > 0 ? `this machine has a GPU (${gpu.name})` : false;

function mambalab(args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', cli, ...args], { encoding: 'utf8', cwd: repoRoot, timeout: 5 * 60_000 });
}

test('mambalab train --json prints one JSON line per step and writes the run', () => {
  const out = join(scratchDir(), 'run');
  const run = mambalab(['train', '--model', 'mamba', '--size', 'tiny', '--steps', '12', '--device', 'cpu', '--data', C4_SAMPLE,
    '--seed', '3', '--out', out, '--json', '--batch-size', '2', '--seq-len', '32']);
  assert.equal(run.status, 0, run.stderr);
  const lines = run.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, number | string>);
  assert.equal(lines.length, 12);
  lines.forEach((line, i) => {
    for (const key of ['step', 'loss', 'lr', 'grad_norm', 'tokens', 'tokens_per_s']) assert.equal(typeof line[key], 'number', `${key} in ${JSON.stringify(line)}`);
    assert.equal(line.device, 'cpu');
    assert.equal(line.step, i + 1);
    assert.equal(line.tokens, (i + 1) * 2 * 32);
  });
  assert.equal(typeof lines.at(-1)!.eval_loss, 'number', 'the last step carries the validation loss');
  assert.match(run.stderr, /model mamba\/tiny on cpu: 65,472 parameters \+ 3,216,896 embedding/);
  const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
  assert.equal(config.model.dModel, 64);
  assert.equal(readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').length, 12);
  for (const f of ['model.safetensors', 'config.json', 'optimizer.safetensors', 'trainer.json']) {
    assert.ok(existsSync(join(out, 'checkpoint', f)), `checkpoint/${f}`);
  }
  assert.equal(loadModel(join(out, 'checkpoint')).config.seed, 3);
});

test('the same seed gives the same losses', () => {
  const args = ['train', '--steps', '3', '--data', C4_SAMPLE, '--seed', '7', '--json', '--batch-size', '1', '--seq-len', '16'];
  const a = mambalab([...args, '--out', join(scratchDir(), 'a')]);
  const b = mambalab([...args, '--out', join(scratchDir(), 'b')]);
  const losses = (r: typeof a) => r.stdout.trim().split('\n').map((l) => JSON.parse(l).loss);
  assert.deepEqual(losses(a), losses(b));
});

test('bad flags and bad data are one-line errors with exit code 2, no stack trace', () => {
  const dir = scratchDir();
  const empty = join(dir, 'empty.json.gz');
  writeFileSync(empty, '');
  const corrupt = join(dir, 'corrupt.json.gz');
  writeFileSync(corrupt, Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0x42]));
  const cases: [string[], RegExp][] = [
    [['train', '--steps', '1'], /--data is required/],
    [['train', '--data', join(dir, 'nope.json.gz')], /nope\.json\.gz does not exist/],
    [['train', '--data', empty], /empty\.json\.gz: the name says gzip but the file is empty/],
    [['train', '--data', corrupt], /corrupt\.json\.gz: the gzip data ends early: the file is truncated/],
    [['train', '--data', C4_SAMPLE, '--steps', 'ten'], /--steps: expected an integer ≥ 1, got 'ten'/],
    [['train', '--data', C4_SAMPLE, '--size', 'huge'], /--size huge: unknown size/],
    [['train', '--data', C4_SAMPLE, '--bogus'], /train: Unknown option '--bogus'/],
    [['train', '--data', C4_SAMPLE, '--device', 'tpu'], /--device: expected cpu, cuda or auto, got 'tpu'/],
    [['train', '--data', C4_SAMPLE, '--precision', 'fp16'], /--precision: expected bf16 or fp32, got 'fp16'/],
    [['train', '--data', C4_SAMPLE, '--dtype', 'half'], /--dtype: expected float32 or float64, got 'half'/],
    [['train', '--data', C4_SAMPLE, '--device', 'cuda', '--dtype', 'float64'], /config\.dtype: expected "float32" on device "cuda"/],
    [['train', '--data', C4_SAMPLE, '--deterministic=yes'], /--deterministic' does not take an argument/],
    [['frobnicate'], /unknown command 'frobnicate'/],
  ];
  for (const [args, message] of cases) {
    const r = mambalab(args);
    assert.equal(r.status, 2, `${args.join(' ')}: exit ${r.status}\n${r.stderr}`);
    assert.match(r.stderr, message, args.join(' '));
    assert.doesNotMatch(r.stderr, /\n\s+at /, `no stack trace for ${args.join(' ')}`);
  }
});

test('--device cuda without a GPU is a one-line error that says why and what to use', { skip: noGpuHere }, () => {
  const r = mambalab(['train', '--data', C4_SAMPLE, '--device', 'cuda', '--steps', '1']);
  assert.equal(r.status, 2, r.stderr);
  assert.equal(r.stderr, `mambalab: config.device: "cuda" was asked for, but ${gpu.status}; use "cpu" or "auto"\n`);
});

test('--device auto says on stderr which device it picked and why; --precision and --deterministic reach the saved config', { skip: noGpuHere }, () => {
  const out = join(scratchDir(), 'run');
  const r = mambalab(['train', '--data', C4_SAMPLE, '--device', 'auto', '--precision', 'fp32', '--deterministic', '--steps', '2',
    '--batch-size', '1', '--seq-len', '8', '--json', '--out', out]);
  assert.equal(r.status, 0, r.stderr);
  assert.ok(r.stderr.includes(`device auto: CPU (${gpu.status})\n`), r.stderr);
  assert.match(r.stderr, /model mamba\/tiny on cpu: /);
  assert.deepEqual(r.stdout.trim().split('\n').map((l) => JSON.parse(l).device), ['cpu', 'cpu']);
  const { model } = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
  assert.deepEqual([model.device, model.precision, model.deterministic], ['auto', 'fp32', true]);
});

test('MoE models report tokens per expert and dropped tokens on every JSON line', () => {
  for (const [model, k] of [['moe-mamba', 1], ['blackmamba', 1]] as const) {
    const run = mambalab(['train', '--model', model, '--size', 'tiny', '--steps', '3', '--data', C4_SAMPLE, '--json',
      '--batch-size', '2', '--seq-len', '16', '--out', join(scratchDir(), model)]);
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stderr, /active per token/);
    for (const line of run.stdout.trim().split('\n').map((l) => JSON.parse(l))) {
      assert.equal(line.experts.length, 1, 'one MoE layer');
      assert.equal(line.experts[0].length, 4, 'four experts');
      const routed = line.experts[0].reduce((a: number, b: number) => a + b, 0) + line.dropped[0];
      assert.equal(routed, k * 2 * 16, `${model}: counts + dropped = tokens`);
      assert.equal(typeof line.aux_loss, 'number');
    }
  }
});

test('the baselines train end to end on the C4 sample: Transformer, Transformer-MoE and the Jamba hybrid lower the loss on the CPU', () => {
  for (const model of ['transformer', 'transformer-moe', 'jamba']) {
    const run = mambalab(['train', '--model', model, '--size', 'tiny', '--steps', '30', '--device', 'cpu', '--data', C4_SAMPLE, '--seed', '1',
      '--json', '--batch-size', '4', '--seq-len', '64', '--out', join(scratchDir(), model)]);
    assert.equal(run.status, 0, run.stderr);
    const losses = run.stdout.trim().split('\n').map((l) => JSON.parse(l).loss as number);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const [first, last] = [mean(losses.slice(0, 5)), mean(losses.slice(-5))];
    // From ln(50257) ≈ 10.8 at the start; 30 steps take about 2 nats off (measured: 10.74 → 8.3 by step 40).
    assert.ok(last < first - 1, `${model}: mean loss ${first.toFixed(3)} over the first 5 steps, ${last.toFixed(3)} over the last 5`);
  }
});

const TINY_RUN = ['train', '--data', C4_SAMPLE, '--seed', '4', '--batch-size', '2', '--seq-len', '16', '--json'];

test('--lr 1000: non-finite steps are skipped and reported, then training stops with exit 2, naming the step and the last good checkpoint', () => {
  const out = join(scratchDir(), 'hot');
  const r = mambalab([...TINY_RUN, '--steps', '60', '--lr', '1000', '--warmup', '0', '--checkpoint-every', '1', '--max-bad-steps', '4', '--out', out]);
  assert.equal(r.status, 2, r.stderr);
  const lines = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const bad = lines.filter((l) => l.skipped);
  assert.equal(bad.length, 4);
  assert.deepEqual(bad.map((l) => l.nonfinite_steps), [1, 2, 3, 4]);
  assert.ok(bad.every((l) => l.loss === null || l.grad_norm === null || !Number.isFinite(l.loss)), 'NaN is null in the JSON lines');
  const last = lines.at(-1)!;
  const good = last.step - 4;
  assert.match(r.stderr, new RegExp(`mambalab: training diverged at step ${last.step}: 4 consecutive steps \\(${good + 1} to ${last.step}\\).*the last good checkpoint is .*step-0*${good} \\(step ${good}\\)`));
  assert.equal(JSON.parse(readFileSync(join(out, 'checkpoint', 'trainer.json'), 'utf8')).step, good, 'no checkpoint after the bad steps');
});

test('--resume refuses what it cannot continue, naming the field that differs; a run directory is never started over', () => {
  const out = join(scratchDir(), 'run');
  const first = mambalab([...TINY_RUN, '--steps', '3', '--out', out]);
  assert.equal(first.status, 0, first.stderr);
  const cases: [string[], RegExp][] = [
    [[...TINY_RUN, '--steps', '3', '--out', out], /train: .*run already holds a run \(config\.json\); --resume continues it, or choose another --out/],
    [[...TINY_RUN, '--steps', '3', '--resume'], /train: --resume needs --out/],
    [[...TINY_RUN, '--steps', '3', '--out', join(out, 'nothing'), '--resume'], /train --resume: .*nothing holds no run \(no config\.json\); start it without --resume/],
    [[...TINY_RUN, '--steps', '3', '--lr', '0.1', '--out', out, '--resume'], /cannot be resumed with this one:\n  trainer\.lr: 0\.003 in the run, 0\.1 now\n$/],
    [[...TINY_RUN, '--steps', '5', '--seq-len', '8', '--out', out, '--resume'], /  steps: 3 in the run, 5 now\n  trainer\.seqLen: 16 in the run, 8 now\n  trainer\.totalSteps: 3 in the run, 5 now/],
    [[...TINY_RUN, '--steps', '3', '--grad-accum', '3', '--out', join(out, 'x')], /trainer\.gradAccumulation: 3 micro-batches must divide the batch of 2 rows/],
    [[...TINY_RUN, '--steps', '3', '--keep', '0', '--out', join(out, 'x')], /--keep: expected an integer ≥ 1, got '0'/],
  ];
  for (const [args, message] of cases) {
    const r = mambalab(args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
  }
  // What may change on resume: checkpointing, the bad-step limit, the micro-batches.
  const again = mambalab([...TINY_RUN, '--steps', '3', '--out', out, '--resume', '--checkpoint-every', '7', '--keep', '5', '--max-bad-steps', '2', '--grad-accum', '2']);
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stderr, /done: .* is trained to step 3 of 3 already/);
});

test('--grad-accum trains as one pass per step; --resume drops what a crash cut short and trains it again', () => {
  const dir = scratchDir();
  const args = [...TINY_RUN, '--steps', '6', '--eval-every', '3', '--eval-tokens', '40'];
  const straight = mambalab([...args, '--out', join(dir, 'straight')]);
  assert.equal(straight.status, 0, straight.stderr);
  const out = join(dir, 'stopped');
  const accumulated = mambalab([...args, '--out', out, '--checkpoint-every', '2', '--grad-accum', '2']);
  assert.equal(accumulated.status, 0, accumulated.stderr);
  const lines = (file: string) => readFileSync(file, 'utf8').trim().split('\n').map((l) => {
    const { tokens_per_s: _, ...rest } = JSON.parse(l);
    return rest;
  });
  const a = lines(join(dir, 'straight', 'metrics.jsonl'));
  const b = lines(join(out, 'metrics.jsonl'));
  a.forEach((line, i) => {
    assert.ok(Math.abs(b[i].loss - line.loss) <= 1e-5 * line.loss, `step ${i + 1}: ${b[i].loss} vs ${line.loss}`);
    assert.deepEqual([b[i].step, b[i].tokens, b[i].lr], [line.step, line.tokens, line.lr]);
  });
  assert.deepEqual(Object.keys(a[2]), ['step', 'loss', 'lr', 'grad_norm', 'tokens', 'device', 'skipped', 'nonfinite_steps', 'eval_loss', 'eval_ppl']);
  assert.equal(a[2].eval_ppl, Math.exp(a[2].eval_loss));
  // A cut metrics line, and a newest checkpoint gone bad on disk. Resumed (in one pass per step: that may change).
  writeFileSync(join(out, 'metrics.jsonl'), readFileSync(join(out, 'metrics.jsonl'), 'utf8').split('\n').slice(0, 5).join('\n') + '\n{"step": 6, "lo');
  truncateSync(join(out, 'checkpoints', 'step-00000006', 'model.safetensors'), 100);
  const resumed = mambalab([...args, '--out', out, '--checkpoint-every', '2', '--resume']);
  assert.equal(resumed.status, 0, resumed.stderr);
  assert.match(resumed.stderr, /resume: passing over .*step-00000006: checkpoint: .*model\.safetensors is not a valid safetensors file/);
  assert.match(resumed.stderr, /resume: from step 4 \(.*step-00000004\)/);
  const c = lines(join(out, 'metrics.jsonl'));
  assert.equal(c.length, 6, 'the cut line is dropped and steps 5 and 6 trained again');
  assert.deepEqual(c.slice(4).map((l) => l.step), [5, 6]);
  assert.equal(loadModel(join(out, 'checkpoint')).config.seed, 4, 'step 6 written again, whole');
  assert.equal(JSON.parse(readFileSync(join(out, 'checkpoint', 'trainer.json'), 'utf8')).step, 6);
});

test('mambalab eval: the validation loss and perplexity of a run, a checkpoint or a saved model', () => {
  const dir = scratchDir();
  const out = join(dir, 'run');
  const trained = mambalab([...TINY_RUN, '--steps', '4', '--eval-tokens', '64', '--out', out]);
  assert.equal(trained.status, 0, trained.stderr);
  const last = JSON.parse(readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').at(-1)!);
  const evaluate = (model: string, extra: string[] = []) => mambalab(['eval', '--model', model, '--data', C4_SAMPLE, '--eval-tokens', '64', ...extra]);
  const r = evaluate(out, ['--json']);
  assert.equal(r.status, 0, r.stderr);
  const result = JSON.parse(r.stdout);
  assert.equal(result.loss, last.eval_loss, 'the loss the run measured at its last step, from its newest checkpoint');
  assert.equal(result.perplexity, Math.exp(result.loss));
  assert.deepEqual([result.step, result.tokens, result.split, result.device], [4, 64, 'validation', 'cpu']);
  const text = evaluate(join(out, 'checkpoint'));
  assert.equal(text.status, 0, text.stderr);
  assert.match(text.stdout, /\(step 4\) on .*c4-sample.* validation: loss \d+\.\d{4}, perplexity [\d.]+ over 64 tokens \(cpu\)\n$/);
  const missing = evaluate(dir);
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /eval: .* holds no model \(no model\.safetensors\) and no checkpoint \(no checkpoints\/step-\*\)/);
  assert.match(mambalab(['eval', '--data', C4_SAMPLE]).stderr, /eval: --model is required/);
});
