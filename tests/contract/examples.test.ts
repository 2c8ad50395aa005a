// The example documents in contract/schema/examples are valid against the display schema (checked
// with ajv directly, independently of the extension's own parser), and cover every plot kind.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';

import { expertBalance } from '../../contract/src/balance.js';
import type { DisplayDoc } from '../../contract/src/schema.js';

const schemaDir = join(import.meta.dirname, '..', '..', 'contract', 'schema');
const schema = JSON.parse(readFileSync(join(schemaDir, 'mambalab.v1.schema.json'), 'utf8'));
const validate = new Ajv2020({ allErrors: true, strict: true }).compile(schema);
const examples = readdirSync(join(schemaDir, 'examples')).filter((name) => name.endsWith('.json'));
const load = (name: string): { plots: Array<{ kind: string }> } & Record<string, unknown> =>
  JSON.parse(readFileSync(join(schemaDir, 'examples', name), 'utf8'));

test('there is an example bundle for each plot kind', () => {
  const kinds = new Set(examples.flatMap((name) => load(name).plots.map((plot) => plot.kind)));
  assert.deepEqual([...kinds].sort(), ['experts', 'final', 'loss', 'savings']);
});

for (const name of examples) {
  test(`example ${name} is valid against mambalab.v1.schema.json`, () => {
    const ok = validate(load(name));
    assert.ok(ok, JSON.stringify(validate.errors, null, 2));
  });
}

test("the experts example carries the balance the kernel computes from its counts (to 4 digits)", () => {
  const run = (load('experts.json') as unknown as DisplayDoc).runs[0]!;
  const { balance, ...counts } = run.experts!;
  const expected = expertBalance(counts);
  for (const name of ['tokens', 'maxOverMean', 'cv', 'droppedFraction'] as const) {
    balance![name].forEach((row, i) =>
      row.forEach((value, l) => {
        const want = expected[name][i]![l]!;
        assert.ok(value === want || Math.abs(value! - want!) <= 5e-5, `${name}[${i}][${l}]: ${value} vs ${want}`);
      }),
    );
  }
});

test('the schema rejects what it should (so the checks above can fail)', () => {
  const bundle = load('loss.json');
  assert.equal(validate({ ...bundle, version: 2 }), false);
  assert.equal(validate({ ...bundle, plots: [] }), false);
  assert.equal(validate({ ...bundle, extra: true }), false);
});

test('the browser fixture notebook carries the example bundles unchanged', () => {
  // Regenerate with: node --import tsx tests/browser/fixtures/make-notebook.ts
  const notebookPath = join(import.meta.dirname, '..', 'browser', 'fixtures', 'plots.ipynb');
  const notebook = JSON.parse(readFileSync(notebookPath, 'utf8')) as { cells: Array<{ outputs?: Array<{ data: Record<string, unknown> }> }> };
  const stored = notebook.cells.flatMap((cell) => cell.outputs ?? []).map((output) => output.data['application/vnd.mambalab.v1+json']);
  for (const name of ['loss.json', 'savings.json', 'experts.json']) {
    assert.ok(stored.some((bundle) => JSON.stringify(bundle) === JSON.stringify(load(name))), `plots.ipynb lacks an up-to-date ${name}`);
  }
});
