import assert from 'node:assert/strict';
import { test } from 'node:test';
import { balanceRows, gridShape, heatmapFigure, layerBarsFigure, relativeLoad } from '../../labextension/src/experts-figure.js';
import { routingAt } from '../../labextension/src/experts.js';
import { plotTheme } from '../../labextension/src/theme.js';

const theme = plotTheme(() => '', true);
const experts = {
  layers: [1, 3, 5],
  numExperts: 4,
  step: [0],
  counts: [[[10, 10, 10, 10], [40, 0, 0, 0], [0, 0, 0, 0]]],
  dropped: [[0, 30, 0]],
};
const routing = routingAt(experts, 0);

test('heatmap: one row per layer, one column per expert, shares on a log scale centred on uniform', () => {
  const figure = heatmapFigure(routing, 4, theme);
  const trace = figure.data[0]! as unknown as { z: number[][]; y: string[]; x: number[]; zmin: number; zmax: number; customdata: string[][][]; colorbar: { ticktext: string[] } };
  assert.deepEqual(trace.y, ['layer 1', 'layer 3', 'layer 5']);
  assert.deepEqual(trace.x, [0, 1, 2, 3]);
  // uniform shares sit at 0; one expert taking all 4 experts' tokens is 4× uniform = log2 4
  assert.deepEqual(trace.z, [[0, 0, 0, 0], [2, -3, -3, -3], [-3, -3, -3, -3]]);
  assert.deepEqual(trace.customdata[1]![0], ['40', '100.0%']);
  assert.deepEqual([trace.zmin, trace.zmax], [-3, 3]);
  assert.equal(trace.colorbar.ticktext[3], '25.0% (uniform)');
  assert.equal(trace.colorbar.ticktext[6], '≥ 200.0%');
  assert.equal(trace.colorbar.ticktext[0], '≤ 3.1%');
});

test('relative load: log2 of share × E, clamped to ±3', () => {
  assert.equal(relativeLoad(1 / 32, 32), 0);
  assert.equal(relativeLoad(2 / 32, 32), 1);
  assert.equal(relativeLoad(0.5 / 32, 32), -1);
  assert.equal(relativeLoad(0.9, 32), 3);
  assert.equal(relativeLoad(0, 32), -3);
});

test('bars: one subplot per layer in a grid, each with the uniform share marked', () => {
  const figure = layerBarsFigure(routing, 4, theme);
  assert.deepEqual(figure.data.map((t) => [t.xaxis, t.yaxis]), [['x', 'y'], ['x2', 'y2'], ['x3', 'y3']]);
  assert.deepEqual(figure.data[1]!.y, [1, 0, 0, 0]);
  const shapes = figure.layout.shapes as Array<{ y0: number; yref: string }>;
  assert.deepEqual(shapes.map((s) => [s.yref, s.y0]), [['y', 0.25], ['y2', 0.25], ['y3', 0.25]]);
  const yRange = (figure.layout as Record<string, { range: number[] }>)['yaxis3']!.range;
  assert.deepEqual(yRange, [0, 1.05], 'one y-range for all layers: the largest share at this step');
  const titles = (figure.layout.annotations as Array<{ text: string }>).map((a) => a.text);
  assert.deepEqual(titles, ['layer 1 · max/mean 1.00', 'layer 3 · max/mean 4.00', 'layer 5 · max/mean –']);
});

test('a balanced step still gets a y-range of twice the uniform share', () => {
  const balanced = routingAt({ layers: [0], numExperts: 4, step: [0], counts: [[[10, 10, 11, 9]]] }, 0);
  const range = (layerBarsFigure(balanced, 4, theme).layout as Record<string, { range: number[] }>)['yaxis']!.range;
  assert.ok(Math.abs(range[1]! - 0.5 * 1.05) < 1e-12, String(range));
});

test('the grid for 8 MoE layers is 2 × 4, for 15 (BlackMamba 340M) 4 × 4', () => {
  assert.deepEqual(gridShape(8), { rows: 2, columns: 4 });
  assert.deepEqual(gridShape(15), { rows: 4, columns: 4 });
  assert.deepEqual(gridShape(1), { rows: 1, columns: 1 });
});

test('balance table rows: tokens, max/mean, CV and dropped per layer', () => {
  assert.deepEqual(balanceRows(routing), [
    ['1', '40', '1.00', '0.00', '0 (0.0%)'],
    ['3', '70', '4.00', '1.73', '30 (42.9%)'],
    ['5', '0', '–', '–', '0 (–)'],
  ]);
});
