import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { DisplayDoc } from '@mambalab/contract';
import { progressLine } from '../../labextension/src/progress.js';

const bundle = (progress?: DisplayDoc['progress']): DisplayDoc => ({
  version: 1,
  runs: [{ id: 'moe', name: 'MoE-Mamba', status: 'running', train: { step: [], tokens: [], wallS: [], loss: [] } }],
  plots: [{ kind: 'loss' }],
  progress,
});

test('the status line while a run trains', () => {
  const line = progressLine(bundle({ runId: 'moe', step: 12_300, totalSteps: 100_000, loss: 3.62, tokensPerS: 410_000, etaS: 3720 }));
  assert.deepEqual(line, { text: 'MoE-Mamba: step 12,300 / 100,000 (12%) · loss 3.6200 · 410k tokens/s · 1h 02m left', fraction: 0.123 });
});

test('no progress, no line; a minimal one still reads', () => {
  assert.equal(progressLine(bundle()), null);
  assert.deepEqual(progressLine(bundle({ step: 5, totalSteps: 0 })), { text: 'step 5 / 0 (0%)', fraction: 0 });
});
