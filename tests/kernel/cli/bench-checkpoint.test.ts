// `mambalab bench checkpoint`: checkpoint write and load times, and the guard's cost per step.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { test } from 'node:test';

import { benchCheckpoint } from '../../../kernel/src/cli/bench-checkpoint.js';
import { scratchDir } from '../../helpers.js';

test('bench checkpoint times atomic checkpoints and a guarded, a bare and a skipped step, and leaves nothing behind', async () => {
  const dir = scratchDir();
  const lines: string[] = [];
  const r = (await benchCheckpoint(
    ['--model', 'mamba', '--size', 'tiny', '--batch-size', '2', '--seq-len', '16', '--steps', '2', '--repeats', '2', '--dir', dir],
    (line) => lines.push(line),
  )) as Record<string, unknown>;
  assert.equal(r.name, 'checkpoint-mamba-tiny');
  assert.equal(r.device, 'cpu');
  // Weights and two AdamW moments of every parameter, in float32, with headers and trainer.json.
  const params = r.params_total as number;
  assert.ok((r.checkpoint_bytes as number) > 12 * params && (r.checkpoint_bytes as number) < 12 * params + 200_000, `${r.checkpoint_bytes} bytes for ${params} parameters`);
  for (const key of ['checkpoint_write_s', 'checkpoint_load_s']) assert.equal((r[key] as number[]).length, 2, key);
  for (const key of ['engine_step_ms', 'trainer_step_ms', 'skipped_step_ms', 'guard_bookkeeping_us_per_step']) assert.ok((r[key] as number) > 0, key);
  assert.deepEqual(r.skipped_step, { skipped: true, cuda_graph: false });
  assert.deepEqual(r.cuda_graph_steps, { engine: 0, trainer: 0, of: 2 });
  assert.deepEqual(readdirSync(dir), [], 'the checkpoints are removed');
  assert.match(lines.join('\n'), /checkpoint 2\/2: 0\.04 GiB written in [\d.]+ s, loaded in [\d.]+ s/);
});
