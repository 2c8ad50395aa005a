// The kill test: the real CLI on the real C4 sample, SIGKILLed again and again (after random
// steps, and inside checkpoint writes), resumed each time; the run directory stays readable
// after every kill, and the finished run is the uninterrupted run's, bit for bit. The harness is
// tests/support/kill-resume.ts; the GPU host runs it with --device cuda --deterministic
// (tests/gpu/kill-test.sh).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';

import { C4_SAMPLE, repoRoot, scratchDir } from '../../helpers.js';
import { killAndResume } from '../../support/kill-resume.js';

const STEPS = 40;

test('a run SIGKILLed 8 times, 4 of them inside checkpoint writes, and resumed each time ends bit-identical to an uninterrupted one', { timeout: 10 * 60_000 }, async (t) => {
  const report = await killAndResume({
    cli: [process.execPath, '--import', 'tsx', join(repoRoot, 'kernel', 'src', 'cli', 'main.ts')],
    train: ['train', '--model', 'mamba', '--size', 'tiny', '--steps', String(STEPS), '--data', C4_SAMPLE, '--seed', '11', '--batch-size', '2',
      '--seq-len', '32', '--checkpoint-every', '4', '--keep', '2', '--eval-every', '10', '--eval-tokens', '128', '--json'],
    steps: STEPS,
    work: scratchDir('mambalab-kill-'),
    kills: 8,
    seed: 17,
  });
  t.diagnostic(`${report.kills.length} kills, ${report.kills.filter((k) => k.insideWrite).length} inside a checkpoint write, ${report.attempts} attempts, ${report.seconds.toFixed(1)} s`);
  for (const k of report.kills) t.diagnostic(`kill ${k.attempt} (${k.kind}): resumed from step ${k.resumedFrom}, killed after step ${k.lastStep}${k.insideWrite ? ', inside a checkpoint write' : ''}`);
  assert.deepEqual(report.unreadable, [], 'the run directory was readable after every kill');
  assert.deepEqual(report.differences, [], 'the same final checkpoint and metrics (tokens_per_s aside) as the uninterrupted run');
  assert.equal(report.kills.length, 8);
  assert.ok(report.kills.filter((k) => k.insideWrite).length >= 2, 'kills landed inside checkpoint writes');
  assert.deepEqual(report.wallClockKeys, ['tokens_per_s']);
});
