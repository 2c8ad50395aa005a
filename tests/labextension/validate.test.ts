import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { DisplayDoc } from '@mambalab/contract';
import { parseBundle, withNaNs } from '../../labextension/src/validate.js';

const examples = join(import.meta.dirname, '..', '..', 'contract', 'schema', 'examples');
const example = (name: string): DisplayDoc => JSON.parse(readFileSync(join(examples, name), 'utf8'));

function minimal(): DisplayDoc {
  return {
    version: 1,
    runs: [{ id: 'a', name: 'A', status: 'running', train: { step: [1, 2], tokens: [10, 20], wallS: [0.1, 0.2], loss: [5, 4] } }],
    plots: [{ kind: 'loss' }],
  };
}

function failure(data: unknown): { title: string; details: string[] } {
  const result = parseBundle(data);
  assert.equal(result.ok, false, 'expected the bundle to be rejected');
  return result as { ok: false; title: string; details: string[] };
}

test('the example bundles parse', () => {
  for (const name of ['loss.json', 'savings.json', 'experts.json', 'final.json']) {
    const result = parseBundle(example(name));
    assert.ok(result.ok, `${name}: ${JSON.stringify(result)}`);
  }
});

test('a .mambalab.json file arrives as text and parses the same', () => {
  const result = parseBundle(JSON.stringify(minimal()));
  assert.ok(result.ok);
  assert.equal(result.bundle.runs[0]!.name, 'A');
});

test('text that is not JSON says so', () => {
  const { title, details } = failure('{"version": 1,');
  assert.match(title, /not valid JSON/);
  assert.equal(details.length, 1);
});

test('a newer schema version asks to update the extension', () => {
  const { title, details } = failure({ ...minimal(), version: 2, somethingNew: [] });
  assert.match(title, /schema version 2.*reads version 1/);
  assert.match(details[0]!, /Update the mambalab JupyterLab extension/);
});

test('schema errors name the place and the problem', () => {
  const bundle = minimal() as unknown as { runs: Array<{ train: Record<string, unknown> }> };
  bundle.runs[0]!.train['loss'] = 'high';
  const { title, details } = failure(bundle);
  assert.match(title, /does not match the display schema/);
  assert.ok(details.some((line) => line.startsWith('/runs/0/train/loss: must be array')), details.join('\n'));
});

test('unknown fields and kinds are named', () => {
  assert.ok(failure({ ...minimal(), colour: 'red' }).details.some((line) => line.includes("'colour'")));
  assert.ok(failure({ ...minimal(), plots: [{ kind: 'pie' }] }).details.some((line) => /\/plots\/0\/kind: .*"loss", "savings", "experts"/.test(line)));
});

test('not an object at all', () => {
  assert.match(failure([1, 2]).details[0]!, /an array/);
  assert.match(failure(null).details[0]!, /null/);
});

test('series of different lengths are caught', () => {
  const bundle = minimal();
  bundle.runs[0]!.train.loss.push(3);
  const { title, details } = failure(bundle);
  assert.match(title, /inconsistent/);
  assert.match(details[0]!, /\/runs\/0\/train: .*loss 3/);
});

test('ids that point nowhere are caught', () => {
  const bundle = minimal();
  bundle.plots = [{ kind: 'loss', runs: ['a', 'b'] }, { kind: 'savings' }];
  const { details } = failure(bundle);
  assert.ok(details.some((line) => line === "/plots/0/runs: no run has id 'b'"));
  assert.ok(details.some((line) => line.startsWith('/plots/1/comparison: a savings plot needs comparisons[0]')));
});

test('expert count tables of the wrong shape are caught', () => {
  const bundle = minimal();
  bundle.runs[0]!.experts = { layers: [1, 3], numExperts: 4, step: [0, 100], counts: [[[1, 2, 3, 4], [1, 2, 3]], [[1, 2, 3, 4]]], dropped: [[0, 0]] };
  const { details } = failure(bundle);
  assert.ok(details.includes('/runs/0/experts/counts/0/1: one count per expert expected (4), found 3'), details.join('\n'));
  assert.ok(details.includes('/runs/0/experts/counts/1: one row per MoE layer expected (2), found 1'), details.join('\n'));
  assert.ok(details.includes('/runs/0/experts/dropped: one row per recorded step expected (2), found 1'), details.join('\n'));
});

test("a balance table that does not match the counts' steps and layers is caught", () => {
  const bundle = minimal();
  const balance = { tokens: [[4, 4], [4, 4]], maxOverMean: [[1, 1]], cv: [[0, 0], [0]], droppedFraction: [[0, 0], [0, 0]] };
  bundle.runs[0]!.experts = { layers: [1, 3], numExperts: 2, step: [0, 100], counts: [[[2, 2], [2, 2]], [[2, 2], [2, 2]]], balance };
  const { details } = failure(bundle);
  assert.deepEqual(details, [
    '/runs/0/experts/balance/maxOverMean: one row per recorded step expected (2), found 1',
    '/runs/0/experts/balance/cv/1: one value per MoE layer expected (2), found 1',
  ]);
});

test('duplicate run ids are caught', () => {
  const bundle = minimal();
  bundle.runs.push({ ...bundle.runs[0]! });
  assert.ok(failure(bundle).details.includes("/runs/1: run id 'a' is used twice"));
});

test('nulls (how the kernel writes a non-finite value in JSON) become NaN, in copies only', () => {
  const bundle = minimal() as unknown as { runs: Array<{ train: Record<string, Array<number | null>> }> };
  bundle.runs[0]!.train['loss'] = [5, null];
  const frozen = JSON.stringify(bundle);
  const revived = withNaNs(bundle as unknown as DisplayDoc);
  assert.ok(Number.isNaN(revived.runs[0]!.train.loss[1]!));
  assert.equal(revived.runs[0]!.train.loss[0], 5);
  assert.equal(revived.runs[0]!.train.step, (bundle as unknown as DisplayDoc).runs[0]!.train.step, 'series without null are not copied');
  assert.equal(JSON.stringify(bundle), frozen, 'the output model data is left as it came');
});

test('nulls in expert counts and savings curves are revived too', () => {
  const bundle = example('savings.json');
  (bundle.comparisons![0]!.curve.ratio as Array<number | null>)[0] = null;
  bundle.runs[1]!.experts = { layers: [1], numExperts: 2, step: [0], counts: [[[1, null as unknown as number]]], dropped: [[null as unknown as number]] };
  const revived = withNaNs(bundle);
  assert.ok(Number.isNaN(revived.comparisons![0]!.curve.ratio[0]!));
  assert.ok(Number.isNaN(revived.runs[1]!.experts!.counts[0]![0]![1]!));
  assert.ok(Number.isNaN(revived.runs[1]!.experts!.dropped![0]![0]!));
});

test("a final-loss plot needs the sweep's final losses, and their run ids must exist", () => {
  const bundle = { ...minimal(), plots: [{ kind: 'final' as const }] };
  assert.deepEqual(failure(bundle).details, ['/plots/0: a final-loss plot needs finalLoss, which the bundle lacks']);
  const pointsAstray = { ...bundle, finalLoss: { field: 'numExperts', smoothing: 0.5, points: [{ runId: 'a', value: 1, loss: 4 }, { runId: 'gone', value: 8, loss: 3.9 }] } };
  assert.deepEqual(failure(pointsAstray).details, ["/finalLoss/points/1/runId: no run has id 'gone'"]);
  assert.ok(parseBundle({ ...pointsAstray, finalLoss: { ...pointsAstray.finalLoss, points: pointsAstray.finalLoss.points.slice(0, 1) } }).ok);
});
