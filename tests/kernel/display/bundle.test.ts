// Display bundles: our MIME type, valid against the schema, with text and HTML that read alone.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { displayDocument, MAMBALAB_MIME, type ComparisonDoc, type RunDoc } from '@mambalab/contract';

import { toBundle } from '../../../kernel/src/display/bundle.js';
import { escapeHtml, htmlTable } from '../../../kernel/src/display/html.js';
import { textSummary } from '../../../kernel/src/display/text.js';
import { schemaErrors } from '../../support/schema.js';

const run = (id: string, losses: number[], status: RunDoc['status'] = 'done'): RunDoc => ({
  id,
  name: id,
  status,
  model: { family: 'mamba', pattern: 'M*2', dModel: 64, paramsTotal: 65472, paramsActive: 65472 },
  train: {
    step: losses.map((_, i) => i + 1),
    tokens: losses.map((_, i) => (i + 1) * 256),
    wallS: losses.map((_, i) => (i + 1) * 0.1),
    loss: losses,
    tokensPerS: losses.map(() => 2560),
  },
  ...(losses.length > 0
    ? { validation: { step: [0, losses.length], tokens: [0, losses.length * 256], wallS: [0, losses.length * 0.1], loss: [10.9, losses.at(-1)! + 0.1] } }
    : {}),
});

const comparison: ComparisonDoc = {
  baseline: 'mamba',
  candidate: 'moe',
  smoothing: 0.001,
  axis: 'step',
  baselineFinalLoss: 3.51,
  baselineAt: 100000,
  candidateReachesAt: 46000,
  ratio: 100000 / 46000,
  curve: { loss: [4, 3.51], baselineAt: [20000, 100000], candidateAt: [9000, 46000], ratio: [2.22, 2.17] },
};

test('a bundle carries the versioned MIME type, text/plain and text/html', () => {
  const doc = displayDocument({ runs: [run('mamba', [10.8, 9.5, 8.1])], comparisons: [comparison], progress: { runId: 'mamba', step: 3, totalSteps: 40, loss: 8.1, tokensPerS: 2560, etaS: 14 } });
  const bundle = toBundle(doc);
  assert.deepEqual(Object.keys(bundle).sort(), [MAMBALAB_MIME, 'text/html', 'text/plain'].sort());
  assert.equal(MAMBALAB_MIME, 'application/vnd.mambalab.v1+json');
  assert.equal(bundle[MAMBALAB_MIME], doc);
  assert.equal(schemaErrors(doc), '');
  assert.deepEqual(doc.plots, [{ kind: 'loss', x: 'step', showValidation: true }, { kind: 'savings', comparison: 0, title: 'moe vs mamba' }]);

  const text = bundle['text/plain'];
  assert.match(text, /mamba \[done\] mamba M\*2 d_model 64 65\.5k params: step 3, 768 tokens, loss 8\.1000, eval loss 8\.2000, 2\.56k tok\/s/);
  // The comparison's candidate is not among the document's runs: its id stands for its name.
  assert.match(text, /moe reaches mamba's final loss 3\.5100 \(EMA α = 0\.001\) at step 46,000: 2\.2× fewer steps \(mamba ends at step 100,000\)\./);
  assert.match(text, /mamba: step 3 \/ 40 \(8%\) · loss 8\.1000 · 2\.56k tokens\/s · 14s left/);

  const html = bundle['text/html'];
  assert.match(html, /<table>.*<th>run<\/th>.*<td>mamba<\/td><td>done<\/td>/s);
  assert.match(html, /<li>moe reaches mamba&#39;s final loss .*2\.2× fewer steps .*<\/li>/);
  assert.match(html, /<code>mamba: step 3 \/ 40/);
});

test('a document with no runs yet, or a run with no steps, is still valid and readable', () => {
  const doc = displayDocument({ runs: [run('empty', [], 'running')] });
  assert.equal(schemaErrors(doc), '');
  assert.match(textSummary(doc), /empty \[running\] .*step 0, 0 tokens, loss –, eval loss –, – tok\/s/);
  assert.equal(schemaErrors(displayDocument({ runs: [] })), '');
});

test('a diverged (NaN) loss survives JSON as null, which the schema allows and the text shows as –', () => {
  const doc = JSON.parse(JSON.stringify(displayDocument({ runs: [run('diverged', [10.8, Number.NaN])] })));
  assert.equal(doc.runs[0].train.loss[1], null);
  assert.equal(schemaErrors(doc), '');
  assert.match(textSummary(doc), /diverged \[done\] .*loss –/);
});

test('the HTML escapes run names', () => {
  const doc = displayDocument({ runs: [run('<img src=x onerror=alert(1)>', [5])] });
  const html = htmlTable(doc);
  assert.ok(!html.includes('<img'), html);
  assert.ok(html.includes('&lt;img src=x onerror=alert(1)&gt;'));
  assert.equal(escapeHtml(`a&b"c'`), 'a&amp;b&quot;c&#39;');
});

test('a comparison whose candidate never catches up says so', () => {
  const never = { ...comparison, candidateReachesAt: null, ratio: null };
  const doc = displayDocument({ runs: [], comparisons: [never] });
  assert.equal(schemaErrors(doc), '');
  assert.match(textSummary(doc), /moe has not reached mamba's final loss 3\.5100 \(EMA α = 0\.001\) yet\./);
});

test('the schema validator rejects what the extension could not render', () => {
  const doc = displayDocument({ runs: [run('a', [1])] });
  assert.match(schemaErrors({ ...doc, version: 2 }), /\/version must be equal to constant/);
  assert.match(schemaErrors({ ...doc, plots: [] }), /\/plots must NOT have fewer than 1 items/);
  assert.match(schemaErrors({ ...doc, runs: [{ ...doc.runs[0], status: 'paused' }] }), /\/runs\/0\/status must be equal to one of the allowed values/);
});
