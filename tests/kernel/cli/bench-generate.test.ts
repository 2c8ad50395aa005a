import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';

import { GENERATE_SHAPES } from '../../../kernel/src/cli/bench-generate.js';
import { countParameters } from '../../../kernel/src/models/params.js';
import { resolveConfig, paddedVocabSize } from '../../../kernel/src/models/config.js';
import { repoRoot } from '../../helpers.js';

const cli = join(repoRoot, 'kernel', 'src', 'cli', 'main.ts');

test('bench generate on the CPU: one JSON line per prompt length with ms_per_token', () => {
  const run = spawnSync(process.execPath, ['--import', 'tsx', cli, 'bench', 'generate', '--lengths', '16,64', '--tokens', '4', '--warmup', '1', '--json'],
    { encoding: 'utf8', cwd: repoRoot, timeout: 5 * 60_000 });
  assert.equal(run.status, 0, run.stderr);
  const lines = run.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(lines.map((r) => r.prompt_tokens), [16, 64]);
  for (const r of lines) {
    assert.deepEqual([r.name, r.model, r.device, r.batch, r.new_tokens, r.gpu, r.sampling], ['generate', 'tiny', 'cpu', 1, 4, null, null]);
    assert.ok(r.ms_per_token > 0 && Math.abs(r.tokens_per_s * r.ms_per_token - 1000) < 1e-6, JSON.stringify(r));
  }
});

test('bench generate --temperature samples on the host and says with what', () => {
  const run = spawnSync(process.execPath, ['--import', 'tsx', cli, 'bench', 'generate', '--lengths', '16', '--tokens', '4', '--warmup', '1',
    '--temperature', '0.8', '--top-p', '0.95', '--top-k', '40', '--json'], { encoding: 'utf8', cwd: repoRoot, timeout: 5 * 60_000 });
  assert.equal(run.status, 0, run.stderr);
  const [r] = run.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(r.sampling, { temperature: 0.8, top_k: 40, top_p: 0.95 });
  assert.equal(r.new_tokens, 4);
  assert.ok(r.ms_per_token > 0, JSON.stringify(r));
});

test('bench generate refuses a sampling option out of range, naming it', () => {
  const run = spawnSync(process.execPath, ['--import', 'tsx', cli, 'bench', 'generate', '--lengths', '16', '--tokens', '2',
    '--temperature', '0.8', '--top-p', '1.5', '--json'], { encoding: 'utf8', cwd: repoRoot, timeout: 5 * 60_000 });
  assert.notEqual(run.status, 0);
  assert.match(run.stderr, /top_?p/i);
});

test("the GPU shapes are mamba_ssm's checkpoints' (vocab 50280) and BlackMamba 1.5B", () => {
  const sizes = Object.fromEntries(Object.entries(GENERATE_SHAPES).map(([name, shape]) => {
    const c = resolveConfig(shape());
    return [name, { d: c.dModel, layers: c.pattern, vocab: paddedVocabSize(c), params: countParameters(c).total }];
  }));
  assert.deepEqual([sizes['mamba-130m']!.d, sizes['mamba-370m']!.d, sizes['mamba-1.4b']!.d], [768, 1024, 2048]);
  assert.equal(sizes['mamba-130m']!.vocab, 50280);
  // mamba-130m has 129.1M parameters with its tied embedding (mamba_ssm's count).
  assert.ok(Math.abs(sizes['mamba-130m']!.params - 129.1e6) < 0.5e6, String(sizes['mamba-130m']!.params));
  assert.ok(sizes['blackmamba-1.5b']!.params > 1.3e9, String(sizes['blackmamba-1.5b']!.params));
  // The KV-cache models: a Transformer of mamba-370m's width (~350M) and the Jamba-style preset.
  assert.equal(sizes['transformer-350m']!.layers, 'AF*24');
  assert.ok(Math.abs(sizes['transformer-350m']!.params - 353e6) < 5e6, String(sizes['transformer-350m']!.params));
  assert.ok(sizes['jamba-410m-1.6b']!.layers.includes('A'), sizes['jamba-410m-1.6b']!.layers);
});
