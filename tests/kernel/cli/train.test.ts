import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
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
