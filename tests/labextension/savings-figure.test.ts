import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { ComparisonDoc, DisplayDoc, RunDoc } from '@mambalab/contract';
import { savingsFigure } from '../../labextension/src/savings-figure.js';
import { plotTheme } from '../../labextension/src/theme.js';

const theme = plotTheme(() => '', false);
const color = (run: RunDoc): string => `color-${run.id}`;
const bundle: DisplayDoc = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'contract', 'schema', 'examples', 'savings.json'), 'utf8'));
const [mamba, moe] = bundle.runs as [RunDoc, RunDoc];
const byStep = bundle.comparisons![0]!;

type Shape = { x0: unknown; x1: unknown; y0: unknown; y1: unknown; xref: string; yref: string };
type Annotation = { text: string; x: unknown; y: unknown };

test('the baseline final loss is a horizontal line on the curves', () => {
  const figure = savingsFigure(byStep, mamba, moe, color, theme, 1000);
  const shapes = figure.layout.shapes as Shape[];
  assert.ok(shapes.some((s) => s.yref === 'y' && s.y0 === byStep.baselineFinalLoss && s.y1 === byStep.baselineFinalLoss && s.xref === 'x domain'));
});

test('the step where the candidate reaches it is marked, and the ratio annotated there', () => {
  const figure = savingsFigure(byStep, mamba, moe, color, theme, 1000);
  const marks = figure.data.find((trace) => trace.name === 'marks')!;
  assert.deepEqual(marks.x, [byStep.baselineAt, byStep.candidateReachesAt]);
  assert.deepEqual(marks.y, [byStep.baselineFinalLoss, byStep.baselineFinalLoss]);
  const shapes = figure.layout.shapes as Shape[];
  assert.ok(shapes.some((s) => s.xref === 'x' && s.x0 === byStep.candidateReachesAt && s.x1 === byStep.candidateReachesAt));
  const label = (figure.layout.annotations as Annotation[]).find((a) => a.x === byStep.candidateReachesAt)!;
  assert.equal(label.text, '<b>2.2× fewer steps</b>');
  assert.equal(label.y, byStep.baselineFinalLoss);
});

test('the savings curve is drawn over loss levels, with 1× as reference', () => {
  const figure = savingsFigure(byStep, mamba, moe, color, theme, 1000);
  const curve = figure.data.find((trace) => trace.xaxis === 'x2')!;
  assert.deepEqual(curve.x, byStep.curve.loss);
  assert.deepEqual(curve.y, byStep.curve.ratio);
  assert.ok((figure.layout.shapes as Shape[]).some((s) => s.yref === 'y2' && s.y0 === 1 && s.y1 === 1));
  assert.equal((figure.layout.xaxis2 as { autorange: string }).autorange, 'reversed', 'lower loss to the right: training goes left to right');
});

test('the curves are smoothed with the comparison alpha and drawn on its axis', () => {
  const byTokens = bundle.comparisons![1]!;
  assert.equal(byTokens.axis, 'tokens');
  const figure = savingsFigure(byTokens, mamba, moe, color, theme, 1000);
  const baseline = figure.data[0]!;
  assert.equal((baseline.x as number[]).at(-1), mamba.train.tokens.at(-1));
  // the smoothed baseline ends at the final loss the kernel reported (same EMA, 4 decimals)
  assert.ok(Math.abs((baseline.y as number[]).at(-1)! - byStep.baselineFinalLoss) < 1e-4);
  assert.equal((figure.layout.annotations as Annotation[]).find((a) => a.x === byTokens.candidateReachesAt)!.text, '<b>2.2× fewer tokens</b>');
});

test('a candidate that has not reached the level yet: no marker, no ratio', () => {
  const notYet: ComparisonDoc = { ...byStep, candidateReachesAt: null, ratio: null };
  const figure = savingsFigure(notYet, mamba, moe, color, theme, 1000);
  assert.deepEqual(figure.data.find((trace) => trace.name === 'marks')!.x, [byStep.baselineAt]);
  assert.equal((figure.layout.annotations as Annotation[]).length, 1, 'only the level label');
});
