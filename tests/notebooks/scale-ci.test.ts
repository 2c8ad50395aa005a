// Every paper notebook (one with a `parameters` cell that sets `scale`) run headlessly with
// `mambalab notebook run --param scale=ci` on the real kernel, offline, on the embedded C4
// sample: no cell fails, nothing reports an error, and our plots are there and valid.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { MAMBALAB_MIME, type DisplayDoc } from '@mambalab/contract';

import type { Notebook, Output } from '../../kernel/src/notebook/ipynb.js';
import { schemaErrors } from '../support/schema.js';
import { repoRoot, scratchDir } from '../helpers.js';

const cli = join(repoRoot, 'kernel', 'src', 'cli', 'main.ts');
const text = (x: string | string[] | undefined) => (Array.isArray(x) ? x.join('') : (x ?? ''));

function scaledNotebooks(): string[] {
  return readdirSync(join(repoRoot, 'notebooks'))
    .filter((name) => name.endsWith('.ipynb'))
    .filter((name) => {
      const nb = JSON.parse(readFileSync(join(repoRoot, 'notebooks', name), 'utf8')) as Notebook;
      return nb.cells.some((c) => c.metadata.tags?.includes('parameters') && /\bconst scale\b/.test(text(c.source)));
    })
    .sort();
}

/** Runs the notebook at scale=ci in a scratch copy (its runs/ stay there); the executed notebook. */
function runAtCiScale(name: string): Notebook {
  const dir = scratchDir('mambalab-notebook-');
  copyFileSync(join(repoRoot, 'notebooks', name), join(dir, name));
  const out = join(dir, `executed-${name}`);
  const run = spawnSync(process.execPath, ['--import', 'tsx', cli, 'notebook', 'run', join(dir, name), '--param', 'scale=ci', '--out', out, '--timeout', '600'], {
    cwd: repoRoot,
    env: { ...process.env, MAMBALAB_DATA_DIR: join(dir, 'cache'), MAMBALAB_OFFLINE: '1' },
    encoding: 'utf8',
    timeout: 15 * 60_000,
  });
  assert.equal(run.status, 0, `${name} failed:\n${run.stdout}\n${run.stderr}`);
  return JSON.parse(readFileSync(out, 'utf8')) as Notebook;
}

const docsOf = (outputs: Output[]) =>
  outputs.flatMap((o) => (o.output_type === 'display_data' && o.data[MAMBALAB_MIME] ? [o.data[MAMBALAB_MIME] as DisplayDoc] : []));

test('the paper notebooks are found: 02-moe-mamba, 03-blackmamba and 04-hybrids among them', () => {
  for (const name of ['02-moe-mamba.ipynb', '03-blackmamba.ipynb', '04-hybrids.ipynb']) assert.ok(scaledNotebooks().includes(name), scaledNotebooks().join(', '));
});

for (const name of scaledNotebooks()) {
  test(`${name} runs at scale=ci: every cell, no errors, our plots present and valid`, () => {
    const nb = runAtCiScale(name);
    const code = nb.cells.filter((c) => c.cell_type === 'code');
    assert.ok(code.every((c) => typeof c.execution_count === 'number'), 'every code cell ran');
    assert.deepEqual(code.filter((c) => c.metadata.tags?.includes('injected-parameters')).map((c) => text(c.source).trim().split('\n').at(-1)), ['const scale: string = "ci";']);
    const outputs = code.flatMap((c) => c.outputs ?? []);
    assert.deepEqual(outputs.filter((o) => o.output_type === 'error'), [], 'no error outputs');
    // tslab prints a failing cell's error to stderr: stderr carries progress notes only.
    const stderr = outputs.flatMap((o) => (o.output_type === 'stream' && o.name === 'stderr' ? [text(o.text)] : []));
    assert.ok(stderr.every((t) => !/error|exception|failed|traceback/i.test(t)), `stderr: ${stderr.join('\n')}`);
    const docs = docsOf(outputs);
    assert.ok(docs.length > 0, `no ${MAMBALAB_MIME} output`);
    for (const doc of docs) assert.equal(schemaErrors(doc), '');
    assert.ok(docs.every((d) => d.progress === undefined), 'live outputs end without their progress line');
    if (name === '02-moe-mamba.ipynb') checkMoeMamba(nb);
    if (name === '03-blackmamba.ipynb') checkBlackMamba(nb);
    if (name === '04-hybrids.ipynb') checkHybrids(nb);
  });
}

/** The outputs of the cell with this id. */
const cellOutputs = (nb: Notebook, id: string): Output[] => nb.cells.find((c) => c.id === id)!.outputs ?? [];

/** The rows of a cell's printed table that match `row`, as their captured groups. */
function tableRows(outputs: Output[], row: RegExp): string[][] {
  const printed = outputs.flatMap((o) => (o.output_type === 'stream' && o.name === 'stdout' ? [text(o.text)] : [])).join('');
  return [...printed.matchAll(new RegExp(row.source, 'gm'))].map((m) => m.slice(1));
}

/** The same steps on the same tokens for every run, and finite losses. */
function checkSameBatches(runs: DisplayDoc['runs']): void {
  const last = (r: DisplayDoc['runs'][number]) => [r.train.step.at(-1), r.train.tokens.at(-1)];
  assert.ok(runs.every((r) => JSON.stringify(last(r)) === JSON.stringify(last(runs[0]!))));
  for (const r of runs) assert.ok(r.train.loss.every(Number.isFinite), `${r.id}: finite losses`);
}

/** What 02-moe-mamba's figures must hold, whatever the scale. */
function checkMoeMamba(nb: Notebook): void {
  const cell = (id: string) => cellOutputs(nb, id);
  const [models] = docsOf(cell('savings'));
  assert.ok(models, 'show(models)');
  assert.deepEqual(models.runs.map((r) => [r.id, r.status]), ['mamba', 'mamba-mlp', 'moe-mamba', 'parallel-moe-mamba', 'transformer', 'transformer-moe'].map((id) => [id, 'done']));
  assert.deepEqual(models.comparisons!.map((c) => [c.baseline, c.candidate]), ['mamba-mlp', 'moe-mamba', 'parallel-moe-mamba', 'transformer', 'transformer-moe'].map((id) => ['mamba', id]));
  assert.deepEqual(models.plots.map((p) => p.kind), ['loss', 'savings', 'savings', 'savings', 'savings', 'savings', 'experts', 'experts', 'experts']);
  // The same batch order: every model trained the same steps on the same number of tokens.
  checkSameBatches(models.runs);

  // The experts sweep: the live table ends with every configuration done, then the final losses.
  const table = cell('sweep').find((o) => o.output_type === 'display_data' && !o.data[MAMBALAB_MIME]);
  assert.ok(table && table.output_type === 'display_data', 'the sweep table');
  assert.match(text(table.data['text/plain'] as string[]), /^sweep over numExperts: 5 of 5 configurations done\n/);
  const [sweep] = docsOf(cell('final-loss'));
  assert.deepEqual(sweep!.runs.map((r) => r.id), ['numExperts-1', 'numExperts-4', 'numExperts-8', 'numExperts-16', 'numExperts-32']);
  assert.deepEqual(sweep!.runs.map((r) => r.experts?.numExperts), [1, 4, 8, 16, 32]);
  assert.deepEqual(sweep!.plots.slice(0, 2).map((p) => p.kind), ['loss', 'final']);
  assert.deepEqual(sweep!.finalLoss!.points.map((p) => [p.runId, p.value]), [1, 4, 8, 16, 32].map((n) => [`numExperts-${n}`, n]));
  assert.ok(sweep!.finalLoss!.points.every((p) => Number.isFinite(p.loss)));
  const finals = text((cell('final-loss').find((o) => o.output_type === 'stream') as { text: string[] }).text);
  assert.equal(finals.match(/^ ?\d+ experts: final loss \d+\.\d{4} \(Mamba: \d+\.\d{4}\)$/gm)?.length, 5, finals);

  // Tokens per expert, per MoE layer, for MoE-Mamba.
  const [experts] = docsOf(cell('experts'));
  const moe = experts!.runs[0]!;
  assert.equal(moe.id, 'moe-mamba');
  assert.ok(moe.experts!.counts.length > 0 && moe.experts!.balance !== undefined);
}

/** What 03-blackmamba's figures and tables must hold at scale=ci (tiny models: 4 experts, lengths 16, 64, 256). */
function checkBlackMamba(nb: Notebook): void {
  const cell = (id: string) => cellOutputs(nb, id);
  const models = ['blackmamba', 'mamba', 'transformer', 'transformer-moe'];
  const [savings] = docsOf(cell('savings'));
  assert.deepEqual(savings!.runs.map((r) => [r.id, r.status]), models.map((id) => [id, 'done']));
  assert.deepEqual(savings!.comparisons!.map((c) => [c.baseline, c.candidate]), ['blackmamba', 'transformer', 'transformer-moe'].map((id) => ['mamba', id]));
  checkSameBatches(savings!.runs);

  // Loss against training FLOPs, and the FLOPs each model needs to reach Mamba's final loss.
  const [flops] = docsOf(cell('flops'));
  assert.deepEqual(flops!.plots.map((p) => [p.kind, p.x]), [['loss', 'flops']]);
  assert.ok(flops!.runs.every((r) => r.flopsPerToken! > 0));
  const reach = tableRows(cell('flops'), /^(\S+) +(\d\.\d{3}e\+\d+) +([\d,]+|—) +(\d\.\d{3}e\+\d+|—)$/);
  assert.deepEqual(reach.map((r) => r[0]), models);
  for (const [, perToken, tokens, total] of reach) {
    if (tokens === '—') assert.equal(total, '—');
    else assert.ok(Math.abs(Number(total) - Number(perToken) * Number(tokens!.replaceAll(',', ''))) <= 1e-3 * Number(total), `${total} = ${perToken} × ${tokens}`);
  }
  // Mamba reaches its own final smoothed loss within its steps.
  assert.notEqual(reach[1]![2], '—');

  // Tokens per expert of BlackMamba's two MoE layers over training.
  const [experts] = docsOf(cell('experts'));
  assert.equal(experts!.runs[0]!.id, 'blackmamba');
  assert.deepEqual(experts!.runs[0]!.experts!.layers, [1, 3]);
  assert.ok(experts!.runs[0]!.experts!.step.length > 1);

  // Sinkhorn against greedy top-1: the busiest expert over the mean, per layer, in [1, 4]; Sinkhorn the more balanced in each layer.
  const balance = tableRows(cell('balance'), /^(sinkhorn|top1) +(\d+) +(\d+\.\d{3}) +(\d+\.\d{3})$/);
  assert.deepEqual(balance.map((r) => `${r[0]} ${r[1]}`), ['sinkhorn 1', 'sinkhorn 3', 'top1 1', 'top1 3']);
  for (const [, , mean, last] of balance) for (const x of [mean, last]) assert.ok(Number(x) >= 1 && Number(x) <= 4, x);
  for (const layer of ['1', '3']) {
    const [sinkhorn, top1] = ['sinkhorn', 'top1'].map((router) => Number(balance.find((r) => r[0] === router && r[1] === layer)![2]));
    assert.ok(sinkhorn! < top1!, `layer ${layer}: Sinkhorn ${sinkhorn} against top-1 ${top1}`);
  }

  // Generation latency: every model at every length, with positive times.
  const latency = tableRows(cell('latency'), /^(blackmamba|mamba|transformer) +(\d+) +(\d+\.\d+) +(\d+\.\d+) +(\d+\.\d+)$/);
  assert.deepEqual(latency.map((r) => `${r[0]} ${r[1]}`), ['blackmamba', 'mamba', 'transformer'].flatMap((m) => [16, 64, 256].map((n) => `${m} ${n}`)));
  for (const [, , total, perToken, tail] of latency) assert.ok([total, perToken, tail].every((x) => Number(x) > 0), `${total} ${perToken} ${tail}`);

  // The streamed generation ends with every token generated.
  const streamed = cell('generate').find((o) => o.output_type === 'display_data');
  assert.ok(streamed && streamed.output_type === 'display_data', 'the streamed generation');
  assert.match(text(streamed.data['text/plain'] as string[]), /done: 24\/24 tokens/);
}

/** What 04-hybrids' figures and table must hold at scale=ci. */
function checkHybrids(nb: Notebook): void {
  const cell = (id: string) => cellOutputs(nb, id);
  const [savings] = docsOf(cell('savings'));
  assert.deepEqual(savings!.runs.map((r) => [r.id, r.status, r.model?.pattern]), [
    ['hybrid', 'done', 'MFMEMFMEAFMEMFME'],
    ['mamba', 'done', 'MFME*4'],
    ['attention', 'done', 'AFAE*5'],
  ]);
  // Equal active parameters: within 10% of the hybrid's.
  const active = savings!.runs.map((r) => r.model!.paramsActive!);
  assert.ok(active.every((n) => Math.abs(n - active[0]!) <= 0.1 * active[0]!), String(active));
  assert.deepEqual(savings!.comparisons!.map((c) => [c.baseline, c.candidate]), [['mamba', 'hybrid'], ['mamba', 'attention']]);
  checkSameBatches(savings!.runs);

  // Side by side: loss, tokens/s and ms per token at each length, all positive; tokens/s as the runs logged.
  const rows = tableRows(cell('side-by-side'), /^(hybrid|mamba|attention) +(\d+\.\d{3})M +(\d+\.\d{4}) +(\d+) +(\d+\.\d{3}) +(\d+\.\d{3}) +(\d+\.\d{3})$/);
  assert.deepEqual(rows.map((r) => r[0]), ['hybrid', 'mamba', 'attention']);
  for (const [name, , loss, tokensPerS, ...ms] of rows) {
    const run = savings!.runs.find((r) => r.id === name)!;
    const logged = run.train.tokensPerS!.slice(1);
    assert.ok(Number(tokensPerS) >= Math.floor(Math.min(...logged)) && Number(tokensPerS) <= Math.ceil(Math.max(...logged)), `${name}: ${tokensPerS} tokens/s`);
    assert.ok(Number(loss) > 0 && ms.every((x) => Number(x) > 0), `${name}: ${loss} ${ms}`);
  }

  const [experts] = docsOf(cell('experts'));
  assert.equal(experts!.runs[0]!.id, 'hybrid');
  assert.deepEqual(experts!.runs[0]!.experts!.layers, [3, 7, 11, 15]);
}
