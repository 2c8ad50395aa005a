// `mambalab train --ranks N --expert-parallel`: each rank holds and runs its N-th of every MoE
// layer's experts and the ranks exchange tokens, taking the steps the same ranks take without it
// (the tiny presets clip at 1, and a step clipping scales agrees to rounding: losses within 1e-12,
// expert counts and drops exactly); rank 0 says what it holds; checkpoints hold the whole model
// and resume on other ranks, with or without it; what cannot be shared is refused by name before
// any rank starts.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { loadModel } from '../../../kernel/src/models/model.js';
import { C4_SAMPLE, repoRoot, scratchDir } from '../../helpers.js';

const cli = join(repoRoot, 'kernel', 'src', 'cli', 'main.ts');
const train = (model: string) => ['train', '--model', model, '--size', 'tiny', '--steps', '4', '--device', 'cpu', '--dtype', 'float64',
  '--data', C4_SAMPLE, '--seed', '5', '--json', '--batch-size', '8', '--seq-len', '32'];

function mambalab(args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', cli, ...args], { encoding: 'utf8', cwd: repoRoot, timeout: 5 * 60_000 });
}

type Line = { loss: number; grad_norm: number; experts: number[][]; dropped: number[] };
const lines = (stdout: string): Line[] => stdout.trim().split('\n').map((l) => JSON.parse(l) as Line);

/** The bytes of weights and gradients, and of moments, that rank 0 says it holds. */
function held(stderr: string): { parameters: number; moments: number } {
  const bytes = (what: RegExp) => Number(what.exec(stderr)?.[1]?.replaceAll(',', '') ?? NaN);
  return { parameters: bytes(/parameters: ([\d,]+) bytes of weights and gradients on rank 0/), moments: bytes(/optimizer state: ([\d,]+) bytes of AdamW moments on rank 0/) };
}

/** Largest relative difference between two checkpoints' weights. */
function weightDifference(a: string, b: string): number {
  const [x, y] = [loadModel(a), loadModel(b)];
  let worst = 0;
  for (const p of x.parameters()) {
    const u = x.getParameter(p.name), v = y.getParameter(p.name);
    for (let i = 0; i < u.length; i++) worst = Math.max(worst, Math.abs(u[i]! - v[i]!) / Math.max(1e-3, Math.abs(u[i]!)));
  }
  x.dispose(), y.dispose();
  return worst;
}

// MoE-Mamba on 2 ranks, BlackMamba on 4: each router and rank count once here (every process
// costs seconds in CI); the native tests (tests/native/train/expert_parallel.cpp) take both
// routers on 2 and 4 ranks bit for bit.
test('train --expert-parallel takes the steps of the same ranks without it (MoE-Mamba on 2 ranks, BlackMamba on 4, float64): expert counts and drops equal, losses within 1e-12, weights 1e-10; rank 0 holds its experts alone', () => {
  const dir = scratchDir();
  for (const [model, world] of [['moe-mamba', 2], ['blackmamba', 4]] as const) {
    const args = [...train(model), '--ranks', String(world)];
    const plain = mambalab([...args, '--out', join(dir, `${model}-${world}-plain`)]);
    const shared = mambalab([...args, '--out', join(dir, `${model}-${world}-ep`), '--expert-parallel']);
    assert.equal(plain.status, 0, plain.stderr);
    assert.equal(shared.status, 0, shared.stderr);
    assert.match(shared.stderr, new RegExp(`experts shared \\(${4 / world} per MoE layer apiece, tokens exchanged all-to-all\\)`));
    const [a, b] = [lines(plain.stdout), lines(shared.stdout)];
    assert.equal(b.length, 4);
    for (const [i, line] of b.entries()) {
      assert.deepEqual(line.experts, a[i]!.experts, `${model} ${world}: step ${i + 1}'s expert counts differ`);
      assert.deepEqual(line.dropped, a[i]!.dropped, `${model} ${world}: step ${i + 1}'s drops differ`);
      assert.ok(Math.abs(line.loss - a[i]!.loss) <= 1e-12 * a[i]!.loss, `${model} ${world}: loss ${line.loss} vs ${a[i]!.loss}`);
    }
    const worst = weightDifference(join(dir, `${model}-${world}-plain`, 'checkpoint'), join(dir, `${model}-${world}-ep`, 'checkpoint'));
    assert.ok(worst <= 1e-10, `${model} ${world}: weights differ by ${worst}`);
    // What rank 0 says it holds (the engine's own account): the other ranks' experts' weights and
    // gradients (8 bytes each in float64), and their two moments, are missing from the EP rank's.
    const saved = loadModel(join(dir, `${model}-${world}-ep`, 'checkpoint'));
    const experts = saved.parameters().filter((p) => p.name.includes('.moe.experts.')).reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0);
    saved.dispose();
    const [whole, own] = [held(plain.stderr), held(shared.stderr)];
    assert.match(shared.stderr, new RegExp(`on rank 0 \\(its ${4 / world} of 4 experts per MoE layer, the other tensors whole\\)`));
    for (const kind of ['parameters', 'moments'] as const) {
      assert.equal(whole[kind] - own[kind], (16 * experts * (world - 1)) / world, `${model} ${world}: rank 0 holds ${own[kind]} bytes of ${kind} with --expert-parallel, ${whole[kind]} without`);
    }
  }
});

test('a checkpoint of an expert-parallel run holds the whole model and resumes on 1 rank, on 2 without it (within 1e-10 of what the run wrote next: clipping is on), and on 4 with it', () => {
  const dir = scratchDir();
  const run = join(dir, 'run');
  const args = [...train('moe-mamba'), '--checkpoint-every', '2', '--keep', '5'];
  const whole = mambalab([...args, '--out', run, '--ranks', '2', '--expert-parallel']);
  assert.equal(whole.status, 0, whole.stderr);
  const plain = join(dir, 'plain');
  assert.equal(mambalab([...args, '--out', plain, '--ranks', '2']).status, 0);
  for (const [name, ranks] of [['one', []], ['two', ['--ranks', '2']], ['four', ['--ranks', '4', '--expert-parallel']]] as const) {
    // A copy of the run as if it had stopped after step 2, resumed.
    cpSync(run, join(dir, name), { recursive: true, verbatimSymlinks: true });
    rmSync(join(dir, name, 'checkpoints', 'step-00000004'), { recursive: true });
    const resumed = mambalab([...args, '--out', join(dir, name), '--resume', ...ranks]);
    assert.ok(resumed.status === 0 && /resume: from step 2/.test(resumed.stderr), resumed.stderr);
    assert.deepEqual(lines(resumed.stdout).map((l) => (l as unknown as { step: number }).step), [3, 4]);
  }
  // The EP run's gathered step-2 checkpoint is the plain run's to rounding (clipping), and 2 plain
  // ranks resumed from it end where 2 EP ranks would: the EP run's own final checkpoint.
  assert.ok(weightDifference(join(plain, 'checkpoints', 'step-00000002'), join(run, 'checkpoints', 'step-00000002')) <= 1e-10);
  assert.ok(weightDifference(join(run, 'checkpoints', 'step-00000004'), join(dir, 'two', 'checkpoint')) <= 1e-10);
  const opt = (r: string) => readFileSync(join(r, 'checkpoints', 'step-00000002', 'optimizer.safetensors'));
  assert.equal(opt(run).length, opt(plain).length, 'the EP checkpoint does not hold the whole optimizer state');
});

test('--expert-parallel is refused by name: without ranks, experts the ranks cannot split, a model without MoE, with --shard-optimizer', () => {
  const dir = scratchDir();
  for (const [args, message] of [
    [[...train('moe-mamba'), '--expert-parallel'], /train: --expert-parallel shares each MoE layer's experts among data-parallel ranks: give --ranks N or --gpus N with N ≥ 2/],
    [[...train('moe-mamba'), '--expert-parallel', '--ranks', '8', '--batch-size', '24'], /ranks.expertParallel: numExperts 4 does not split into 8 ranks' equal blocks/],
    [[...train('mamba'), '--expert-parallel', '--ranks', '2'], /ranks.expertParallel: the model has no mixture-of-experts layer \('E' in pattern 'M\*2'\)/],
    [[...train('moe-mamba'), '--expert-parallel', '--ranks', '2', '--shard-optimizer'], /train: --expert-parallel and --shard-optimizer do not combine/],
  ] as const) {
    const refused = mambalab([...args, '--out', join(dir, 'x')]);
    assert.equal(refused.status, 2, refused.stderr);
    assert.match(refused.stderr, message);
    assert.doesNotMatch(refused.stderr, /\[rank \d\]/, 'refused before any rank started');
    assert.doesNotMatch(refused.stderr, /\n\s+at /, 'no stack trace');
  }
});
