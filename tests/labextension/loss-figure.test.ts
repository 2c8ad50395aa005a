import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { DisplayDoc, RunDoc } from '@mambalab/contract';
import { dataRange, escapeTemplate, lossFigure, rangeFromRelayout, robustRange, xValues, type LossViewState } from '../../labextension/src/loss-figure.js';
import { plotTheme } from '../../labextension/src/theme.js';

const theme = plotTheme(() => '', false);
const color = (run: RunDoc): string => `color-${run.id}`;
const bundle: DisplayDoc = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'contract', 'schema', 'examples', 'loss.json'), 'utf8'));
const state = (overrides: Partial<LossViewState> = {}): LossViewState => ({ x: 'step', logX: false, logY: false, smoothing: 0, showValidation: true, ignoreOutliers: false, ...overrides });

function run(n: number, extra: Partial<RunDoc> = {}): RunDoc {
  const step = Array.from({ length: n }, (_, i) => i);
  return { id: 'r', name: 'R', status: 'running', train: { step, tokens: step.map((s) => s * 1000), wallS: step.map((s) => s / 2), loss: step.map((s) => 10 / (s + 1)) }, ...extra };
}

test('raw curves: one training and one validation trace per run, in run colours', () => {
  const figure = lossFigure(bundle.runs, state(), color, theme, { buckets: 1000 });
  assert.deepEqual(
    figure.data.map((trace) => trace.name),
    bundle.runs.flatMap((r) => [r.name, `${r.name} (validation)`]),
  );
  assert.deepEqual(figure.data.map((trace) => (trace.line as { color: string }).color), bundle.runs.flatMap((r) => [color(r), color(r)]));
  assert.equal((figure.data[1]!.line as { dash: string }).dash, 'dash');
  assert.deepEqual(figure.notes, []);
});

test('smoothing adds a faint raw trace under the smoothed one and says so on the axis', () => {
  const figure = lossFigure([bundle.runs[0]!], state({ smoothing: 0.001, showValidation: false }), color, theme, { buckets: 1000 });
  assert.equal(figure.data.length, 2);
  assert.equal(figure.data[0]!.opacity, 0.25);
  assert.equal(figure.data[0]!.hoverinfo, 'skip');
  const smoothed = figure.data[1]!.y as number[];
  const raw = bundle.runs[0]!.train.loss;
  assert.equal(smoothed.length, raw.length);
  const wiggle = (values: number[]): number => values.slice(1).reduce((acc, v, i) => acc + Math.abs(v - values[i]!), 0);
  assert.ok(wiggle(smoothed) < wiggle(raw) / 2, 'the smoothed curve is smoother');
  assert.match(String((figure.layout.yaxis as { title: { text: string } }).title.text), /EMA α = 0.001/);
});

test('x axis choices: steps, tokens, wall time, FLOPs = tokens × FLOPs per token', () => {
  const r = run(5, { flopsPerToken: 6e6 });
  const x = (key: LossViewState['x']): unknown => lossFigure([r], state({ x: key }), color, theme, { buckets: 100 }).data[0]!.x;
  assert.deepEqual(x('step'), [0, 1, 2, 3, 4]);
  assert.deepEqual(x('tokens'), [0, 1000, 2000, 3000, 4000]);
  assert.deepEqual(x('wallS'), [0, 0.5, 1, 1.5, 2]);
  assert.deepEqual(x('flops'), [0, 6e9, 12e9, 18e9, 24e9]);
});

test('a run without FLOPs per token is left out of the FLOPs axis with a note', () => {
  const figure = lossFigure([run(5)], state({ x: 'flops' }), color, theme, { buckets: 100 });
  assert.equal(figure.data.length, 0);
  assert.match(figure.notes[0]!, /R: no FLOPs per token/);
  assert.equal(typeof xValues(run(1), run(1).train, 'flops'), 'string');
});

test('log scales and the zoom-keeping revision', () => {
  const a = lossFigure([run(5)], state({ logY: true }), color, theme, { buckets: 100 }).layout;
  assert.equal((a.yaxis as { type: string }).type, 'log');
  assert.equal((a.xaxis as { type: string }).type, 'linear');
  const b = lossFigure([run(6)], state({ logY: true }), color, theme, { buckets: 100 }).layout;
  assert.equal(a.uirevision, b.uirevision, 'new data keeps the zoom');
  const c = lossFigure([run(6)], state({ logY: true, x: 'tokens' }), color, theme, { buckets: 100 }).layout;
  assert.notEqual(a.uirevision, c.uirevision, 'a new x axis resets it');
});

test('100k-point runs are downsampled to the bucket budget; a zoom spends it on the visible range', () => {
  const big = run(100_001);
  const full = lossFigure([big], state(), color, theme, { buckets: 1000 }).data[0]!;
  assert.ok((full.x as number[]).length <= 4000);
  const zoomed = lossFigure([big], state(), color, theme, { buckets: 1000, xRange: { min: 50_000, max: 51_000 } }).data[0]!;
  const xs = zoomed.x as number[];
  assert.equal(xs.length, 1003, 'every point of a 1,001-step window, plus a neighbour each side');
  assert.equal(xs[0], 49_999);
});

test('hover shows the logged values of the hovered point', () => {
  const figure = lossFigure([run(3)], state(), color, theme, { buckets: 100 });
  const custom = figure.data[0]!.customdata as unknown as string[][];
  assert.deepEqual(custom[2], ['2', '2k', '1s', '3.3333']);
  assert.match(String(figure.data[0]!.hovertemplate), /loss %\{customdata\[3\]\}/);
});

test('runs with no steps yet are noted, not an error', () => {
  const figure = lossFigure([run(0)], state(), color, theme, { buckets: 100 });
  assert.deepEqual(figure.notes, ['R: no steps logged yet']);
});

test('run names cannot inject hover placeholders or markup', () => {
  assert.equal(escapeTemplate('a %{y} <b>'), 'a %\u200b{y} &lt;b>');
});

test('relayout events: zoom, reset, and unrelated', () => {
  assert.deepEqual(rangeFromRelayout({ 'xaxis.range[0]': 10, 'xaxis.range[1]': 5 }, 'xaxis'), [5, 10]);
  assert.deepEqual(rangeFromRelayout({ 'yaxis.range': [1, 3] }, 'yaxis'), [1, 3]);
  assert.equal(rangeFromRelayout({ 'xaxis.autorange': true, 'yaxis.autorange': true }, 'yaxis'), null);
  assert.equal(rangeFromRelayout({ 'yaxis.range[0]': 1, 'yaxis.range[1]': 2 }, 'xaxis'), undefined);
  assert.deepEqual(dataRange([1, 3], true), { min: 10, max: 1000 }, 'a log axis reports log10 units');
  assert.deepEqual(dataRange([1, 3], false), { min: 1, max: 3 });
});

test('ignoring outliers fits y to the bulk of the curves, not the first steps', () => {
  // 100 points: the first 3 at ~10 nats, the rest between 3.4 and 4
  const values = [10.8, 9, 7, ...Array.from({ length: 97 }, (_, i) => 4 - (0.6 * i) / 96)];
  const [lo, hi] = robustRange(values, false)!;
  assert.ok(lo < 3.4 && lo > 3.3, String(lo));
  assert.ok(hi > 4 && hi < 4.3, String(hi));
  const [logLo, logHi] = robustRange(values, true)!;
  assert.ok(Math.abs(10 ** logLo - 3.4) < 0.1 && 10 ** logHi < 4.5, `${10 ** logLo} ${10 ** logHi}`);
  assert.equal(robustRange([3, 3, 3], false), undefined, 'flat: let Plotly choose');
  assert.equal(robustRange([5], false), undefined);
});

test('the loss figure uses the outlier fit unless the user zoomed y', () => {
  const r = run(100);
  const fitted = lossFigure([r], state({ ignoreOutliers: true }), color, theme, { buckets: 100 }).layout.yaxis as { range?: number[]; autorange?: boolean };
  assert.deepEqual(fitted.range, robustRange(r.train.loss, false));
  assert.ok(fitted.range![1]! < 10, 'the first step (loss 10) is left out');
  const zoomed = lossFigure([r], state({ ignoreOutliers: true }), color, theme, { buckets: 100, yRange: [1, 2] }).layout.yaxis as { range?: number[] };
  assert.deepEqual(zoomed.range, [1, 2]);
  const auto = lossFigure([r], state(), color, theme, { buckets: 100 }).layout.yaxis as { range?: number[]; autorange?: boolean };
  assert.equal(auto.range, undefined);
  assert.equal(auto.autorange, true);
});

test('skipped steps are marked at the last finite loss before them; none, no marks', () => {
  const r = run(6);
  r.train.loss[3] = Number.NaN;
  r.train.loss[4] = Number.NaN;
  const marked = { ...r, train: { ...r.train, skipped: [0, 0, 0, 1, 1, 0] } };
  const figure = lossFigure([marked], state({ showValidation: false }), color, theme, { buckets: 100 });
  const marks = figure.data.find((trace) => trace.name === 'R (skipped: non-finite)')!;
  assert.deepEqual([marks.x, marks.y, marks.mode], [[3, 4], [10 / 3, 10 / 3], 'markers']);
  assert.equal((marks.marker as { color: string }).color, 'color-r');
  assert.match(String(marks.hovertemplate), /loss or gradient norm was not finite/);
  assert.equal(lossFigure([run(6)], state(), color, theme, { buckets: 100 }).data.length, 1);
});

test('the validation hover gives the perplexity beside the loss', () => {
  const r = run(3, { validation: { step: [0, 2], tokens: [0, 2000], wallS: [0, 1], loss: [Math.log(50_000), Math.log(31.7)] } });
  const trace = lossFigure([r], state(), color, theme, { buckets: 100 }).data[1]!;
  assert.deepEqual((trace.customdata as unknown as string[][]).map((c) => c[4]), ['50k', '31.7']);
  assert.match(String(trace.hovertemplate), /perplexity %\{customdata\[4\]\}/);
});
