import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';

import { createModel } from '../../../kernel/src/models/model.js';
import { preset } from '../../../kernel/src/models/presets.js';
import { repoRoot, scratchDir } from '../../helpers.js';

const cli = join(repoRoot, 'kernel', 'src', 'cli', 'main.ts');

function mambalab(args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', cli, ...args], { encoding: 'utf8', cwd: repoRoot, timeout: 5 * 60_000 });
}

const dir = scratchDir();
const model = createModel({ ...preset('mamba', 'tiny').config, seed: 3 });
model.save(dir);

test('generate --json prints one object with the tokens, the text and ms_per_token: what model.generate gives', async () => {
  const run = mambalab(['generate', '--model', dir, '--prompt', 'Once upon a time', '--max-tokens', '6', '--json']);
  assert.equal(run.status, 0, run.stderr);
  const lines = run.stdout.trim().split('\n');
  assert.equal(lines.length, 1);
  const out = JSON.parse(lines[0]!);
  const want = await model.generate('Once upon a time', { maxTokens: 6 });
  assert.deepEqual(out.tokens, want.tokens);
  assert.equal(out.text, want.text);
  assert.ok(out.ms_per_token > 0 && out.prefill_ms > 0 && out.tokens_per_s > 0, JSON.stringify(out));
  assert.equal(out.finish_reason, 'maxTokens');
  assert.equal(out.device, 'cpu');
});

test('generate streams the text to stdout; sampling flags are seeded; bad flags name themselves', () => {
  const plain = mambalab(['generate', '--model', dir, '--prompt', 'Once upon a time', '--max-tokens', '6']);
  assert.equal(plain.status, 0, plain.stderr);
  const json = JSON.parse(mambalab(['generate', '--model', dir, '--prompt', 'Once upon a time', '--max-tokens', '6', '--json']).stdout);
  assert.equal(plain.stdout, json.text + '\n');
  assert.match(plain.stderr, /6 tokens, [\d.]+ ms\/token \(maxTokens\)/);
  const sample = (seed: string) =>
    JSON.parse(mambalab(['generate', '--model', dir, '--prompt', 'x', '--max-tokens', '8', '--temperature', '1', '--top-k', '40', '--top-p', '0.9', '--seed', seed, '--json']).stdout).tokens;
  assert.deepEqual(sample('5'), sample('5'));
  assert.notDeepEqual(sample('5'), sample('6'));
  const bad = mambalab(['generate', '--model', dir, '--prompt', 'x', '--top-p', '3']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /topP must be in \(0, 1\]/);
  const missing = mambalab(['generate', '--model', dir]);
  assert.match(missing.stderr, /--prompt is required/);
  const nothing = mambalab(['generate', '--model', scratchDir(), '--prompt', 'x']);
  assert.match(nothing.stderr, /holds no model/);
});
