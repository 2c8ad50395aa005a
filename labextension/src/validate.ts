/// <reference path="./json-modules.d.ts" />
// Turns whatever arrived under our MIME type (an object from a notebook, a string from a
// .mambalab.json file) into a display document, or into a message a person can act on. Three
// layers: the version (newer kernels must get a clear "update the extension"), the JSON schema
// (schema/mambalab.v1.schema.json of @mambalab/contract), and the cross-references the schema
// cannot express (equal series lengths, run ids that exist, count tables of the right shape).
import { Ajv2020, type ErrorObject } from 'ajv/dist/2020.js';
import schema from '@mambalab/contract/schema/mambalab.v1.schema.json' with { type: 'json' };
import { SCHEMA_VERSION, type DisplayDoc, type RunDoc } from '@mambalab/contract';

export type ParseResult = { ok: true; bundle: DisplayDoc } | { ok: false; title: string; details: string[] };

const MAX_DETAILS = 8;

let compiled: ReturnType<Ajv2020['compile']> | undefined;
function schemaValidator(): ReturnType<Ajv2020['compile']> {
  compiled ??= new Ajv2020({ allErrors: true, strict: false }).compile(schema);
  return compiled;
}

export function parseBundle(data: unknown): ParseResult {
  let value = data;
  if (typeof data === 'string') {
    try {
      value = JSON.parse(data);
    } catch (error) {
      return fail('This file is not valid JSON', [(error as Error).message]);
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return fail('Expected a mambalab bundle (a JSON object)', [`found ${describe(value)}`]);
  }
  const version = (value as { version?: unknown }).version;
  if (typeof version === 'number' && Number.isInteger(version) && version > SCHEMA_VERSION) {
    return fail(`This output uses mambalab display schema version ${version}; this extension reads version ${SCHEMA_VERSION}`, [
      'Update the mambalab JupyterLab extension to the version that matches your mambalab kernel, then reload the page.',
    ]);
  }
  const validate = schemaValidator();
  if (!validate(value)) {
    return fail('This mambalab output does not match the display schema (version 1)', formatSchemaErrors(validate.errors ?? []));
  }
  const bundle = withNaNs(value as DisplayDoc);
  const problems = crossReferenceProblems(bundle);
  if (problems.length > 0) return fail('This mambalab output is inconsistent', limit(problems));
  return { ok: true, bundle };
}

/**
 * JSON has no NaN, so the kernel writes a non-finite value (a diverged loss) as null; the figures
 * skip NaN. Returns a bundle whose series hold NaN there, copying only the series that had a
 * null: the data object belongs to JupyterLab's output model and must stay as it came.
 */
export function withNaNs(bundle: DisplayDoc): DisplayDoc {
  const revive = (series: Array<number | null>): number[] => (series.includes(null) ? series.map((v) => v ?? Number.NaN) : (series as number[]));
  const columns = <T extends object>(table: T): T => Object.fromEntries(Object.entries(table).map(([key, series]) => [key, revive(series)])) as T;
  return {
    ...bundle,
    runs: bundle.runs.map((run) => ({
      ...run,
      train: columns(run.train),
      ...(run.validation ? { validation: columns(run.validation) } : {}),
      ...(run.experts
        ? {
            experts: {
              ...run.experts,
              step: revive(run.experts.step),
              counts: run.experts.counts.map((table) => table.map(revive)),
              ...(run.experts.dropped ? { dropped: run.experts.dropped.map(revive) } : {}),
            },
          }
        : {}),
    })),
    ...(bundle.comparisons ? { comparisons: bundle.comparisons.map((comparison) => ({ ...comparison, curve: columns(comparison.curve) })) } : {}),
  };
}

function fail(title: string, details: string[]): ParseResult {
  return { ok: false, title, details };
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

function limit(lines: string[]): string[] {
  if (lines.length <= MAX_DETAILS) return lines;
  return [...lines.slice(0, MAX_DETAILS), `… and ${lines.length - MAX_DETAILS} more`];
}

function formatSchemaErrors(errors: ErrorObject[]): string[] {
  const lines = errors.map((error) => {
    const where = error.instancePath === '' ? 'the bundle' : error.instancePath;
    const extra =
      error.keyword === 'additionalProperties'
        ? ` ('${String((error.params as { additionalProperty: string }).additionalProperty)}')`
        : error.keyword === 'enum'
          ? ` (one of ${(error.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')})`
          : '';
    return `${where}: ${error.message ?? error.keyword}${extra}`;
  });
  return limit([...new Set(lines)]);
}

/** What the schema cannot say: shapes that must agree with each other, ids that must exist. */
export function crossReferenceProblems(bundle: DisplayDoc): string[] {
  const problems: string[] = [];
  const ids = new Set<string>();
  bundle.runs.forEach((run, r) => {
    if (ids.has(run.id)) problems.push(`/runs/${r}: run id '${run.id}' is used twice`);
    ids.add(run.id);
    problems.push(...seriesLengthProblems(`/runs/${r}/train`, run.train));
    if (run.validation) problems.push(...seriesLengthProblems(`/runs/${r}/validation`, run.validation));
    problems.push(...expertShapeProblems(`/runs/${r}/experts`, run));
  });
  (bundle.comparisons ?? []).forEach((comparison, c) => {
    for (const role of ['baseline', 'candidate'] as const) {
      if (!ids.has(comparison[role])) problems.push(`/comparisons/${c}/${role}: no run has id '${comparison[role]}'`);
    }
    problems.push(...seriesLengthProblems(`/comparisons/${c}/curve`, comparison.curve));
  });
  (bundle.finalLoss?.points ?? []).forEach((point, i) => {
    if (!ids.has(point.runId)) problems.push(`/finalLoss/points/${i}/runId: no run has id '${point.runId}'`);
  });
  bundle.plots.forEach((plot, p) => {
    for (const id of plot.runs ?? []) if (!ids.has(id)) problems.push(`/plots/${p}/runs: no run has id '${id}'`);
    if (plot.kind === 'final' && !bundle.finalLoss) problems.push(`/plots/${p}: a final-loss plot needs finalLoss, which the bundle lacks`);
    if (plot.kind === 'savings') {
      const index = plot.comparison ?? 0;
      const count = bundle.comparisons?.length ?? 0;
      if (index >= count) problems.push(`/plots/${p}/comparison: a savings plot needs comparisons[${index}], but the bundle has ${count} comparison(s)`);
    }
  });
  return problems;
}

function seriesLengthProblems(where: string, columns: object): string[] {
  const lengths = Object.entries(columns).map(([name, values]) => [name, (values as unknown[]).length] as const);
  const first = lengths[0];
  if (!first) return [];
  const odd = lengths.filter(([, length]) => length !== first[1]);
  if (odd.length === 0) return [];
  return [`${where}: every series must have one value per entry, found ${lengths.map(([name, length]) => `${name} ${length}`).join(', ')}`];
}

function expertShapeProblems(where: string, run: RunDoc): string[] {
  const experts = run.experts;
  if (!experts) return [];
  const problems: string[] = [];
  const layers = experts.layers.length;
  if (experts.counts.length !== experts.step.length) {
    problems.push(`${where}/counts: one table per recorded step expected (${experts.step.length}), found ${experts.counts.length}`);
  }
  experts.counts.forEach((table, i) => {
    if (table.length !== layers) problems.push(`${where}/counts/${i}: one row per MoE layer expected (${layers}), found ${table.length}`);
    table.forEach((row, l) => {
      if (row.length !== experts.numExperts) {
        problems.push(`${where}/counts/${i}/${l}: one count per expert expected (${experts.numExperts}), found ${row.length}`);
      }
    });
  });
  if (experts.dropped) problems.push(...stepByLayerProblems(`${where}/dropped`, experts.dropped, experts.step.length, layers));
  for (const [name, table] of Object.entries(experts.balance ?? {})) {
    problems.push(...stepByLayerProblems(`${where}/balance/${name}`, table, experts.step.length, layers));
  }
  return problems;
}

/** A table with a row per recorded step and a value per MoE layer in each row. */
function stepByLayerProblems(where: string, table: readonly unknown[][], steps: number, layers: number): string[] {
  const problems: string[] = [];
  if (table.length !== steps) problems.push(`${where}: one row per recorded step expected (${steps}), found ${table.length}`);
  table.forEach((row, i) => {
    if (row.length !== layers) problems.push(`${where}/${i}: one value per MoE layer expected (${layers}), found ${row.length}`);
  });
  return problems;
}
