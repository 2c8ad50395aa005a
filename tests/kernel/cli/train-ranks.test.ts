// `mambalab train --ranks N`: N processes on their shares of each batch train what one process
// trains (float64: to rounding), rank 0 alone writes the run, and a failing rank stops the run
// with an error that names it. With --shard-optimizer the same ranks train the same bits in
// about 1/N of the optimizer state each, and their checkpoints resume on any ranks.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { loadModel } from '../../../kernel/src/models/model.js';
import { RANKS_ENV } from '../../../kernel/src/train/ranks.js';
import { C4_SAMPLE, repoRoot, scratchDir } from '../../helpers.js';

const cli = join(repoRoot, 'kernel', 'src', 'cli', 'main.ts');
const TRAIN = ['train', '--model', 'mamba', '--size', 'tiny', '--steps', '4', '--device', 'cpu', '--dtype', 'float64', '--data', C4_SAMPLE,
  '--seed', '5', '--json', '--batch-size', '4', '--seq-len', '32'];

function mambalab(args: string[], env: NodeJS.ProcessEnv = {}) {
  return spawnSync(process.execPath, ['--import', 'tsx', cli, ...args], { encoding: 'utf8', cwd: repoRoot, timeout: 5 * 60_000, env: { ...process.env, ...env } });
}

test('train --ranks 2 takes the steps of one process (float64: losses within 1e-12, weights 1e-10), and rank 0 alone writes the run', () => {
  const dir = scratchDir();
  const one = mambalab([...TRAIN, '--out', join(dir, 'one')]);
  const two = mambalab([...TRAIN, '--out', join(dir, 'two'), '--ranks', '2']);
  assert.equal(one.status, 0, one.stderr);
  assert.equal(two.status, 0, two.stderr);
  assert.match(two.stderr, /ranks: 2 processes, 2 rows of each batch apiece/);
  assert.doesNotMatch(two.stderr, /\[rank 1\]/, 'rank 1 says nothing when all goes well');
  const lines = (out: string) => out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
  const [a, b] = [lines(one.stdout), lines(two.stdout)];
  assert.equal(b.length, 4, 'one line per step, from rank 0 only');
  b.forEach((line, i) => {
    assert.deepEqual([line.step, line.tokens, line.lr], [a[i]!.step, a[i]!.tokens, a[i]!.lr]);
    assert.ok(Math.abs(line.loss! - a[i]!.loss!) <= 1e-12 * a[i]!.loss!, `step ${i + 1}: loss ${line.loss} vs ${a[i]!.loss}`);
  });
  assert.equal(readFileSync(join(dir, 'two', 'metrics.jsonl'), 'utf8').trim().split('\n').length, 4);
  const [wa, wb] = ['one', 'two'].map((run) => loadModel(join(dir, run, 'checkpoint')));
  for (const p of wa!.parameters()) {
    const x = wa!.getParameter(p.name), y = wb!.getParameter(p.name);
    // Adam divides by the gradients' size, so rounding in rare tokens' embedding gradients grows over steps:
    // 1e-11 after 4 steps here, as with --grad-accum 2 in one process.
    for (let i = 0; i < x.length; i++) assert.ok(Math.abs(x[i]! - y[i]!) <= 1e-10 * Math.max(1e-3, Math.abs(x[i]!)), `${p.name}[${i}]`);
  }
});

test('a run trained by 2 ranks resumes from its checkpoint with 4 ranks, and ends where it would have', () => {
  const dir = scratchDir();
  const out = join(dir, 'run');
  const whole = mambalab([...TRAIN, '--out', out, '--ranks', '2', '--checkpoint-every', '2', '--keep', '5']);
  assert.equal(whole.status, 0, whole.stderr);
  const finished = loadModel(join(out, 'checkpoints', 'step-00000004'));
  const final = new Map(finished.parameters().map((p) => [p.name, finished.getParameter(p.name)]));
  finished.dispose();
  rmSync(join(out, 'checkpoints', 'step-00000004'), { recursive: true });  // as if it stopped after step 2
  const resumed = mambalab([...TRAIN, '--out', out, '--ranks', '4', '--resume']);
  assert.equal(resumed.status, 0, resumed.stderr);
  assert.match(resumed.stderr, /resume: from step 2/);
  assert.deepEqual(resumed.stdout.trim().split('\n').map((l) => JSON.parse(l).step), [3, 4]);
  const again = loadModel(join(out, 'checkpoint'));
  for (const p of again.parameters()) {
    const x = final.get(p.name)!, y = again.getParameter(p.name);
    for (let i = 0; i < x.length; i++) assert.ok(Math.abs(x[i]! - y[i]!) <= 1e-10 * Math.max(1e-3, Math.abs(x[i]!)), `${p.name}[${i}]: ${x[i]} vs ${y[i]}`);
  }
});

test('a rank that cannot take its share stops the run, naming the rank; a batch the ranks cannot split is refused first', () => {
  const dir = scratchDir();
  const failing = mambalab([...TRAIN, '--out', join(dir, 'a'), '--ranks', '2', '--grad-accum', '4']);
  assert.equal(failing.status, 2, failing.stderr);
  assert.match(failing.stderr, /ranks: a batch of 4 rows does not split into 2 ranks × 4 micro-batches/);
  assert.match(failing.stderr, /train --ranks 2: rank [01] of 2 exited with code 2; the other ranks were stopped \(continue with --resume\)/);
  assert.doesNotMatch(failing.stderr, /\n\s+at /, 'no stack trace');
  const uneven = mambalab([...TRAIN, '--out', join(dir, 'b'), '--ranks', '3']);
  assert.equal(uneven.status, 2);
  assert.match(uneven.stderr, /--ranks 3 must divide the batch of 4 rows/);
});

test('a rank whose partners never come fails after --rank-timeout, saying what it waited for', () => {
  const ranks = { rank: 0, world: 2, rendezvous: join(scratchDir(), 'rendezvous'), session: 9, timeoutS: 1 };
  const run = mambalab([...TRAIN, '--out', join(scratchDir(), 'alone')], { [RANKS_ENV]: JSON.stringify(ranks) });
  assert.equal(run.status, 2, run.stderr);
  assert.match(run.stderr, /data parallel: rank 0 of 2 waited 1 s at the start for the other ranks: one of them has stopped or hangs/);
  assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
});

/** TRAIN with some of its flags' values replaced. */
function trainWith(values: Record<string, string>): string[] {
  return TRAIN.map((arg, i) => values[TRAIN[i - 1]!] ?? arg);
}

/** Rank 0's AdamW moments in bytes, as train says after the first step. */
function optimizerBytes(stderr: string): number {
  const said = /optimizer state: ([\d,]+) bytes of AdamW moments on rank 0/.exec(stderr);
  assert.ok(said, `no optimizer state line in:\n${stderr}`);
  return Number(said[1]!.replaceAll(',', ''));
}

/** The JSON lines, without what depends on the clock. */
function steps(stdout: string): Record<string, unknown>[] {
  return stdout.trim().split('\n').map((l) => {
    const { tokens_per_s: _, ...rest } = JSON.parse(l) as Record<string, unknown>;
    return rest;
  });
}

const checkpointFiles = (run: string, step: string) => ['model.safetensors', 'optimizer.safetensors'].map((f) => readFileSync(join(run, 'checkpoints', step, f)));

test('train --shard-optimizer takes bit for bit the steps of the same ranks without it (Mamba float64 on 2 ranks, MoE-Mamba float32 on 3), checkpoints the whole optimizer state, and holds 1/N of it per rank', () => {
  const dir = scratchDir();
  for (const [model, dtype, world] of [['mamba', 'float64', 2], ['moe-mamba', 'float32', 3]] as const) {
    const args = [...trainWith({ '--model': model, '--dtype': dtype, '--batch-size': '6' }), '--ranks', String(world)];
    const plain = mambalab([...args, '--out', join(dir, `${model}-plain`)]);
    const sharded = mambalab([...args, '--out', join(dir, `${model}-sharded`), '--shard-optimizer']);
    assert.equal(plain.status, 0, plain.stderr);
    assert.equal(sharded.status, 0, sharded.stderr);
    assert.match(sharded.stderr, new RegExp(`model ${model}/tiny on cpu`));
    assert.match(sharded.stderr, new RegExp(`ranks: ${world} processes, ${6 / world} rows of each batch apiece, gradients summed before each step, optimizer state sharded`));
    assert.equal(JSON.parse(readFileSync(join(dir, `${model}-sharded`, 'config.json'), 'utf8')).model.dtype, dtype);
    assert.deepEqual(steps(sharded.stdout), steps(plain.stdout), `${model}: the JSON lines differ`);
    assert.ok(steps(plain.stdout).every((l) => (l.grad_norm as number) > 1), `${model}: the tiny preset's clipping at 1 was not active`);
    const [a, b] = [checkpointFiles(join(dir, `${model}-plain`), 'step-00000004'), checkpointFiles(join(dir, `${model}-sharded`), 'step-00000004')];
    assert.ok(a[0]!.equals(b[0]!), `${model}: the weights differ`);
    assert.ok(a[1]!.equals(b[1]!), `${model}: the checkpoint's optimizer state differs from unsharded`);
    // The shares are equal within 64 elements (of 8 bytes at most, two moments).
    const whole = optimizerBytes(plain.stderr), share = optimizerBytes(sharded.stderr);
    assert.ok(Math.abs(share * world - whole) <= 2 * 64 * 8 * world, `${model}: rank 0 holds ${share} bytes of moments sharded, ${whole} unsharded`);
  }
});

test('a checkpoint of a sharded run resumes on 3 ranks sharded, on 1 and on 2 unsharded, and each ends where the run would have (2 unsharded: bit for bit)', () => {
  const dir = scratchDir();
  const run = join(dir, 'run');
  const args = [...trainWith({ '--batch-size': '6' }), '--checkpoint-every', '2', '--keep', '5'];
  const whole = mambalab([...args, '--out', run, '--ranks', '2', '--shard-optimizer']);
  assert.equal(whole.status, 0, whole.stderr);
  const final = loadModel(join(run, 'checkpoints', 'step-00000004'));
  const weights = new Map(final.parameters().map((p) => [p.name, final.getParameter(p.name)]));
  final.dispose();
  for (const [name, ranks, exact] of [['three-sharded', ['--ranks', '3', '--shard-optimizer'], false], ['one', [], false], ['two', ['--ranks', '2'], true]] as const) {
    const out = join(dir, name);
    cpSync(run, out, { recursive: true, verbatimSymlinks: true });
    rmSync(join(out, 'checkpoints', 'step-00000004'), { recursive: true });  // as if it stopped after step 2
    const resumed = mambalab([...args, '--out', out, '--resume', ...ranks]);
    assert.equal(resumed.status, 0, resumed.stderr);
    assert.match(resumed.stderr, /resume: from step 2/);
    if (ranks.length > 0) assert.match(resumed.stderr, new RegExp(`ranks: ${ranks[1]} processes.*${ranks.length > 2 ? ', optimizer state sharded' : 'before each step\n'}`));
    assert.deepEqual(resumed.stdout.trim().split('\n').map((l) => JSON.parse(l).step), [3, 4]);
    if (exact) {
      const [a, b] = [checkpointFiles(run, 'step-00000004'), checkpointFiles(out, 'step-00000004')];
      assert.ok(a[0]!.equals(b[0]!) && a[1]!.equals(b[1]!), `${name}: the weights or moments differ from the uninterrupted run`);
      continue;
    }
    const again = loadModel(join(out, 'checkpoint'));
    for (const p of again.parameters()) {
      const x = weights.get(p.name)!, y = again.getParameter(p.name);
      // As the unsharded resume on other ranks: the sums' order changes, the rounding with it.
      for (let i = 0; i < x.length; i++) assert.ok(Math.abs(x[i]! - y[i]!) <= 1e-10 * Math.max(1e-3, Math.abs(x[i]!)), `${name}: ${p.name}[${i}]: ${x[i]} vs ${y[i]}`);
    }
    again.dispose();
  }
});

test('--shard-optimizer without --ranks or --gpus, or with one rank, is refused naming the flag', () => {
  const dir = scratchDir();
  for (const extra of [[], ['--ranks', '1']]) {
    const refused = mambalab([...TRAIN, '--out', join(dir, 'x'), '--shard-optimizer', ...extra]);
    assert.equal(refused.status, 2, refused.stderr);
    assert.match(refused.stderr, /train: --shard-optimizer shares the optimizer state among data-parallel ranks: give --ranks N or --gpus N with N ≥ 2/);
    assert.doesNotMatch(refused.stderr, /\n\s+at /, 'no stack trace');
  }
});
