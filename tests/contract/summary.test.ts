// The one-line summaries the kernel's text and the extension's header share.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import type { ComparisonDoc, DisplayDoc } from '../../contract/src/schema.js';
import { finalLossText, lossSpikeWarning, progressLine, progressText, savingsHeadline } from '../../contract/src/summary.js';

const doc = (progress?: DisplayDoc['progress']): DisplayDoc => ({
  version: 1,
  runs: [{ id: 'moe', name: 'MoE-Mamba', status: 'running', train: { step: [], tokens: [], wallS: [], loss: [] } }],
  plots: [{ kind: 'loss' }],
  progress,
});

test('the status line while a run trains', () => {
  const line = progressLine(doc({ runId: 'moe', step: 12_300, totalSteps: 100_000, loss: 3.62, tokensPerS: 410_000, etaS: 3720 }));
  assert.deepEqual(line, { text: 'MoE-Mamba: step 12,300 / 100,000 (12%) · loss 3.6200 · 410k tokens/s · 1h 02m left', fraction: 0.123 });
});

test('skipped steps and a loss spike join the status line', () => {
  const progress = { step: 40, totalSteps: 100, loss: 9.5, skippedSteps: 3, warning: lossSpikeWarning(12_001, 4.13) };
  assert.equal(progressText(progress), 'step 40 / 100 (40%) · loss 9.5000 · 3 non-finite steps skipped · ⚠ loss spike at step 12,001: 4.1× its running average');
  assert.equal(progressText({ step: 1, totalSteps: 2, skippedSteps: 1 }), 'step 1 / 2 (50%) · 1 non-finite step skipped');
  assert.equal(progressText({ step: 1, totalSteps: 2, skippedSteps: 0 }), 'step 1 / 2 (50%)');
});

test('no progress, no line; a minimal one still reads', () => {
  assert.equal(progressLine(doc()), null);
  assert.deepEqual(progressLine(doc({ step: 5, totalSteps: 0 })), { text: 'step 5 / 0 (0%)', fraction: 0 });
  assert.equal(progressText({ step: 50, totalSteps: 40 }, 'over'), 'over: step 50 / 40 (100%)', 'the fraction stops at 1');
});

const savings: DisplayDoc = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'contract', 'schema', 'examples', 'savings.json'), 'utf8'));
const [byStep, byTokens] = savings.comparisons as [ComparisonDoc, ComparisonDoc];
const names = { baseline: 'Mamba', candidate: 'MoE-Mamba (32 experts)' };

test('the savings headline with the ratio, on either axis', () => {
  assert.equal(
    savingsHeadline(byStep, names),
    "MoE-Mamba (32 experts) reaches Mamba's final loss 3.5144 (EMA α = 0.001) at step 46,400: 2.2× fewer steps (Mamba ends at step 100,000).",
  );
  assert.match(savingsHeadline(byTokens, names), /at 3\.04B tokens: 2\.2× fewer tokens \(Mamba ends at 6\.55B tokens\)\.$/);
});

test('a candidate that has not reached the level yet, or has no ratio', () => {
  assert.equal(
    savingsHeadline({ ...byStep, candidateReachesAt: null, ratio: null }, names),
    "MoE-Mamba (32 experts) has not reached Mamba's final loss 3.5144 (EMA α = 0.001) yet.",
  );
  assert.equal(
    savingsHeadline({ ...byStep, ratio: null }, names),
    "MoE-Mamba (32 experts) reaches Mamba's final loss 3.5144 (EMA α = 0.001) at step 46,400.",
  );
});

test("a sweep's final losses in one line, each series named before its points", () => {
  const example = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'contract', 'schema', 'examples', 'final.json'), 'utf8')) as DisplayDoc;
  assert.equal(finalLossText(example.finalLoss!), 'final loss (EMA α = 0.001) by numExperts: 1 → 3.5745 · 4 → 3.5678 · 8 → 3.5191 · 16 → 3.4523 · 32 → 3.3975');
  const twoFields = { field: 'numExperts', smoothing: 0.1, points: [{ runId: 'a', value: 1, loss: 4, series: 'dModel=64' }, { runId: 'b', value: 'x', loss: 3.5, series: 'dModel=128' }] };
  assert.equal(finalLossText(twoFields), 'final loss (EMA α = 0.1) by numExperts: dModel=64, 1 → 4.0000 · dModel=128, x → 3.5000');
});
