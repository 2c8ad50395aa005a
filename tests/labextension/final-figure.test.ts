import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { DisplayDoc, FinalLossDoc } from '@mambalab/contract';
import { finalLossFigure } from '../../labextension/src/final-figure.js';
import { plotTheme } from '../../labextension/src/theme.js';

const theme = plotTheme(() => '', false);
const bundle: DisplayDoc = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'contract', 'schema', 'examples', 'final.json'), 'utf8'));
const nameOf = (id: string) => bundle.runs.find((r) => r.id === id)?.name ?? id;

test('the experts sweep: final loss against the number of experts, on a log axis ticked at each value', () => {
  const figure = finalLossFigure(bundle.finalLoss!, nameOf, theme);
  assert.equal(figure.data.length, 1);
  const line = figure.data[0]!;
  assert.deepEqual(line.x, [1, 4, 8, 16, 32]);
  assert.deepEqual(line.y, bundle.finalLoss!.points.map((p) => p.loss));
  assert.equal(line.mode, 'lines+markers');
  assert.equal(line.showlegend, false, 'one line needs no legend');
  assert.equal((line.text as string[])[4], '32 experts<br>numExperts 32<br>final loss 3.3975');
  const xaxis = figure.layout.xaxis as { type: string; tickvals: number[]; ticktext: string[]; title: { text: string } };
  assert.deepEqual([xaxis.type, xaxis.tickvals, xaxis.ticktext, xaxis.title.text], ['log', [1, 4, 8, 16, 32], ['1', '4', '8', '16', '32'], 'numExperts']);
  assert.equal((figure.layout.yaxis as { title: { text: string } }).title.text, 'final training loss (EMA α = 0.001)');
});

test('a linear axis for a narrow range, categories for words, one line per series', () => {
  const narrow: FinalLossDoc = { field: 'dModel', smoothing: 0.1, points: [{ runId: 'a', value: 64, loss: 4 }, { runId: 'b', value: 128, loss: 3.8 }] };
  assert.equal((finalLossFigure(narrow, (id) => id, theme).layout.xaxis as { type: string }).type, 'linear');
  const words: FinalLossDoc = {
    field: 'router',
    smoothing: 0.1,
    points: [
      { runId: 'a', value: 'switch', loss: 4, series: 'numExperts=4' },
      { runId: 'b', value: 'sinkhorn', loss: 3.9, series: 'numExperts=4' },
      { runId: 'c', value: 'switch', loss: 3.8, series: 'numExperts=8' },
      { runId: 'd', value: 'sinkhorn', loss: 3.7, series: 'numExperts=8' },
    ],
  };
  const figure = finalLossFigure(words, (id) => id, theme);
  assert.equal((figure.layout.xaxis as { type: string; tickvals?: unknown }).type, 'category');
  assert.equal((figure.layout.xaxis as { tickvals?: unknown }).tickvals, undefined);
  assert.deepEqual(figure.data.map((d) => [d.name, d.x, d.y, d.showlegend]), [
    ['numExperts=4', ['switch', 'sinkhorn'], [4, 3.9], true],
    ['numExperts=8', ['switch', 'sinkhorn'], [3.8, 3.7], true],
  ]);
  assert.notEqual((figure.data[0]!.line as { color: string }).color, (figure.data[1]!.line as { color: string }).color);
});

test('names in the hover cannot inject markup or template fields', () => {
  const figure = finalLossFigure({ field: 'numExperts', smoothing: 1, points: [{ runId: 'x', value: 2, loss: 1 }] }, () => '<b>%{y}</b>', theme);
  assert.equal((figure.data[0]!.text as string[])[0], '&lt;b>%\u200b{y}&lt;/b><br>numExperts 2<br>final loss 1.0000');
});
