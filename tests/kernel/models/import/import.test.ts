// Published checkpoints, written by PyTorch in their exact layouts, imported and loaded: the
// imported model's loss on a batch equals the source model's (computed by
// bench/reference/import_ref.py from the checkpoint itself, with the source's conventions),
// over the whole batch in float32 and row by row in float64.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { importCheckpoint } from '../../../../kernel/src/models/import/import.js';
import { loadModel } from '../../../../kernel/src/models/model.js';
import { randomTokens, scratchDir } from '../../../helpers.js';
import { writeCheckpoint, type Layout } from './checkpoints.js';

const CASES: { layout: Layout; dtype: 'float32' | 'float16' | 'bfloat16'; format: string; vocab: number; pattern: string }[] = [
  { layout: 'hf-mamba', dtype: 'float32', format: 'hf-mamba', vocab: 1000, pattern: 'M*2' },
  { layout: 'hf-mamba-sharded', dtype: 'bfloat16', format: 'hf-mamba', vocab: 1000, pattern: 'M*2' },
  { layout: 'mamba-ssm', dtype: 'float16', format: 'mamba-ssm', vocab: 1001, pattern: 'M*2' },
  { layout: 'mamba-ssm', dtype: 'float32', format: 'mamba-ssm', vocab: 1001, pattern: 'M*2' },
  { layout: 'blackmamba', dtype: 'bfloat16', format: 'blackmamba', vocab: 1024, pattern: 'MEMF' },
];

for (const { layout, dtype, format, vocab, pattern } of CASES) {
  test(`${layout} (${dtype}): imported, loaded, and its loss equals the source model's`, async () => {
    const root = scratchDir();
    const tokens = randomTokens(3, 13, vocab, 7);
    const reference = writeCheckpoint(layout, join(root, 'source'), dtype, tokens)!;
    const out = join(root, 'imported');
    const result = importCheckpoint(join(root, 'source'), out);
    assert.equal(result.format, format);
    assert.equal(result.config.pattern, pattern);
    assert.equal(result.tokenizer, 'neox');
    const record = JSON.parse(readFileSync(join(out, 'import.json'), 'utf8'));
    assert.equal(record.format, format);
    assert.ok(!existsSync(join(root, `.imported.tmp-import-${process.pid}`)), 'no temporary directory left');

    const model = loadModel(out);
    assert.equal(model.parameterCount().total, result.parameters);
    const loss = await model.forward(tokens);
    assert.ok(Math.abs(loss - reference.loss) / reference.loss < 2e-5, `float32 loss ${loss} vs reference ${reference.loss}`);

    const exact = loadModel(out, { dtype: 'float64' });
    for (const [row, expected] of reference.row_losses.entries()) {
      const got = await exact.forward([tokens[row]!]);
      assert.ok(Math.abs(got - expected) / expected < 1e-10, `row ${row}: float64 loss ${got} vs reference ${expected}`);
    }
  });
}

test('a BlackMamba import keeps its conventions in config.json', () => {
  const root = scratchDir();
  writeCheckpoint('blackmamba', join(root, 'source'), 'bfloat16');
  const { config } = importCheckpoint(join(root, 'source'), join(root, 'out'));
  assert.deepEqual(
    { finalNorm: config.finalNorm, expertKind: config.expertKind, mlpKind: config.mlpKind, router: config.router, routerBias: config.routerBias, topK: config.topK, capacityFactor: config.capacityFactor, numExperts: config.numExperts, normEps: config.normEps },
    { finalNorm: 'layernorm', expertKind: 'geglu', mlpKind: 'geglu', router: 'sinkhorn', routerBias: true, topK: 1, capacityFactor: 'dropless', numExperts: 4, normEps: 1e-5 },
  );
});
