import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';

import { attentionBenchRuns } from '../../../kernel/src/cli/bench-attention.js';
import { repoRoot } from '../../helpers.js';

const cli = join(repoRoot, 'kernel', 'src', 'cli', 'main.ts');
const mambalab = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', cli, ...args], { encoding: 'utf8', cwd: repoRoot, timeout: 10 * 60_000 });

test('bench attention times the CUDA kernels on a GPU, one JSON line per length, and says why not elsewhere', (t) => {
  const run = mambalab(['bench', 'attention', '--device', 'cuda', '--json', '--len', '256,512', '--iters', '5', '--warmup', '1']);
  if (run.status === 0) {
    const lines = run.stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.deepEqual(lines.map((l) => (l.shape as { len: number }).len), [256, 512]);
    for (const l of lines) {
      for (const key of ['name', 'impl', 'gpu', 'date', 'dtype', 'causal', 'fwd_ms', 'fwd_bwd_ms', 'fwd_tflops', 'fwd_bwd_tflops']) assert.ok(key in l, `${key} in ${JSON.stringify(l)}`);
      assert.deepEqual(l.shape, { batch: 8, heads: 8, kv_heads: 8, head_dim: 64, len: (l.shape as { len: number }).len });
    }
    return;
  }
  t.diagnostic(`no GPU run here: ${run.stderr.trim()}`);
  assert.equal(run.status, 2, run.stderr);
  assert.match(run.stderr, /^mambalab: bench attention: (no GPU|.*no CUDA backend)/m, 'the error line, after the program it ran');
  assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
  assert.equal(run.stdout, '');
});

test('bench attention refuses the CPU by name', () => {
  const run = mambalab(['bench', 'attention', '--device', 'cpu']);
  assert.equal(run.status, 2);
  assert.equal(run.stderr, 'mambalab: bench attention: --device cpu: the attention bench times the CUDA kernels; use --device cuda\n');
});

test('bench attention passes every shape explicitly: batch 8, 8 heads of 64, lengths 1024 to 8192, bf16 by default', () => {
  const shape = ['--batch', '8', '--heads', '8', '--kv-heads', '8', '--head-dim', '64', '--dtype', 'bf16'];
  assert.deepEqual(attentionBenchRuns([]), [1024, 2048, 4096, 8192].map((len) => [...shape, '--len', String(len)]));
  assert.deepEqual(attentionBenchRuns(['--heads', '16', '--kv-heads', '4', '--len', '333', '--dtype', 'fp32', '--iters', '7', '--warmup', '0']), [
    ['--batch', '8', '--heads', '16', '--kv-heads', '4', '--head-dim', '64', '--dtype', 'fp32', '--warmup', '0', '--iters', '7', '--len', '333'],
  ]);
  assert.equal(attentionBenchRuns(['--heads', '4'])[0]![5], '4', 'KV heads follow the heads unless given');
});

test('bench attention names the bad flag', () => {
  const cases: [string[], RegExp][] = [
    [['--kv-heads', '3'], /^--kv-heads 3: expected a divisor of --heads \(8\)$/],
    [['--len', '1024,0'], /^--len: expected an integer ≥ 1, got '0'$/],
    [['--dtype', 'fp16'], /^--dtype: expected bf16 or fp32, got 'fp16'$/],
    [['--heads', 'many'], /^--heads: expected an integer ≥ 1, got 'many'$/],
    [['--sizes', '3'], /^bench attention: Unknown option '--sizes'/],
  ];
  for (const [argv, message] of cases) assert.throws(() => attentionBenchRuns(argv), { name: 'MambalabError', message }, argv.join(' '));
});
