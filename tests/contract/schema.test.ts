// The TypeScript types of the display document against the JSON schema they mirror: the lists
// the types are built from, and a document that sets every field (typed, so the compiler holds
// it to the types) checked against the schema and for covering every property it declares.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  MAMBALAB_MIME,
  PLOT_KINDS,
  RUN_STATUSES,
  runName,
  runsOfPlot,
  SCHEMA_VERSION,
  TRAIN_COLUMNS,
  VALIDATION_COLUMNS,
  X_AXES,
  type DisplayDoc,
} from '../../contract/src/schema.js';
import { schema, schemaErrors } from '../support/schema.js';

interface SchemaNode {
  $ref?: string;
  const?: unknown;
  enum?: unknown[];
  type?: string | string[];
  required?: string[];
  properties?: Record<string, SchemaNode>;
  items?: SchemaNode;
}

const defs = (schema as { $defs: Record<string, SchemaNode> }).$defs;
const resolved = (node: SchemaNode): SchemaNode => (node.$ref ? defs[node.$ref.replace('#/$defs/', '')]! : node);
const run = resolved(defs['run']!);

test('the MIME type and version are the schema\'s', () => {
  assert.equal((schema as { title: string }).title, MAMBALAB_MIME);
  assert.equal((schema as { properties: { version: SchemaNode } }).properties.version.const, SCHEMA_VERSION);
});

test('run statuses, plot kinds and x-axes are the schema\'s enums', () => {
  assert.deepEqual(run.properties!['status']!.enum, [...RUN_STATUSES]);
  assert.deepEqual(defs['plot']!.properties!['kind']!.enum, [...PLOT_KINDS]);
  assert.deepEqual(defs['plot']!.properties!['x']!.enum, [...X_AXES]);
});

test('the train and validation columns are the schema\'s series, the validation ones required in both', () => {
  const train = run.properties!['train']!;
  const validation = run.properties!['validation']!;
  assert.deepEqual(Object.keys(train.properties!), [...TRAIN_COLUMNS]);
  assert.deepEqual(train.required, [...VALIDATION_COLUMNS]);
  assert.deepEqual(Object.keys(validation.properties!), [...VALIDATION_COLUMNS]);
  assert.deepEqual(validation.required, [...VALIDATION_COLUMNS]);
});

const series = [1, 2];
/** Every field the types allow, set. */
const full: DisplayDoc = {
  version: 1,
  title: 'every field',
  runs: [
    {
      id: 'moe',
      name: 'MoE-Mamba',
      status: 'done',
      model: { family: 'moe-mamba', pattern: 'ME*2', dModel: 64, paramsTotal: 1e6, paramsActive: 2e5 },
      flopsPerToken: 1.2e6,
      train: { step: series, tokens: series, wallS: series, loss: series, lr: series, gradNorm: series, tokensPerS: series, skipped: [0, 1] },
      validation: { step: series, tokens: series, wallS: series, loss: series },
      experts: {
        layers: [1],
        numExperts: 2,
        step: [2],
        counts: [[[3, 1]]],
        dropped: [[0]],
        balance: { tokens: [[4]], maxOverMean: [[1.5]], cv: [[0.5]], droppedFraction: [[0]] },
      },
    },
  ],
  comparisons: [
    {
      baseline: 'moe',
      candidate: 'moe',
      smoothing: 0.5,
      axis: 'step',
      baselineFinalLoss: 2,
      baselineAt: 2,
      candidateReachesAt: 2,
      ratio: 1,
      curve: { loss: [2], baselineAt: [2], candidateAt: [2], ratio: [1] },
    },
  ],
  finalLoss: { field: 'numExperts', smoothing: 0.5, points: [{ runId: 'moe', value: 2, loss: 2, series: 'dModel=64' }] },
  plots: [{ kind: 'loss', runs: ['moe'], comparison: 0, x: 'tokens', logY: true, smoothing: 0.1, showValidation: true, title: 'loss' }],
  progress: { runId: 'moe', step: 2, totalSteps: 4, loss: 2, tokensPerS: 100, etaS: 3, skippedSteps: 1, warning: 'loss spike at step 2: 3.5× its running average' },
};

/** Paths of the properties the schema declares that `value` lacks (arrays: their first item). */
function missing(node: SchemaNode, value: unknown, path: string): string[] {
  const n = resolved(node);
  if (Array.isArray(value)) return n.items && value.length > 0 ? missing(n.items, value[0], `${path}/0`) : [];
  if (!n.properties) return [];
  const object = value as Record<string, unknown>;
  return Object.entries(n.properties).flatMap(([key, child]) =>
    key in object ? missing(child, object[key], `${path}/${key}`) : [`${path}/${key}`],
  );
}

test('a document with every typed field is valid, and covers every property the schema declares', () => {
  assert.equal(schemaErrors(full), '');
  assert.deepEqual(missing(schema as SchemaNode, full, ''), []);
  // The check can fail: a field the types know and the schema does not, and the other way round.
  assert.notEqual(schemaErrors({ ...full, runs: [{ ...full.runs[0], extra: 1 }] }), '');
  const { progress: _, ...withoutProgress } = full;
  assert.deepEqual(missing(schema as SchemaNode, withoutProgress, ''), ['/progress']);
});

const empty = { step: [], tokens: [], wallS: [], loss: [] };
const doc: DisplayDoc = {
  version: 1,
  runs: ['a', 'b', 'c'].map((id) => ({ id, name: id.toUpperCase(), status: 'done' as const, train: empty })),
  plots: [{ kind: 'loss' }],
};

test('a plot without runs shows all runs', () => {
  assert.deepEqual(runsOfPlot(doc, { kind: 'loss' }).map((r) => r.id), ['a', 'b', 'c']);
});

test("a plot's runs come in the plot's order", () => {
  assert.deepEqual(runsOfPlot(doc, { kind: 'loss', runs: ['c', 'a'] }).map((r) => r.id), ['c', 'a']);
});

test('a run is named by its name, or by its id where the document lacks it', () => {
  assert.equal(runName(doc, 'b'), 'B');
  assert.equal(runName(doc, 'gone'), 'gone');
});
