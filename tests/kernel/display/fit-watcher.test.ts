// The live output of fit() in a cell, and stopping on interrupt, with a real Trainer. The
// cell writer here records what tslab's would send; tests/jupyter drives the real kernel.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { expertBalance, MAMBALAB_MIME, type DisplayDoc } from '@mambalab/contract';

import { LiveFitWatcher } from '../../../kernel/src/display/fit-watcher.js';
import type { CellWriter } from '../../../kernel/src/display/tslab.js';
import { setFitWatcher, TrainingInterrupted } from '../../../kernel/src/train/trainer.js';
import { schemaErrors } from '../../support/schema.js';
import { TINY_MOE, tinyData, tinyTrainer } from '../../support/tiny.js';

interface Sent {
  doc: DisplayDoc;
  text: string;
  html: string;
  update: boolean;
  displayId?: string;
  at: number;
}

function recordingCell(): { writer: CellWriter; sent: Sent[] } {
  const sent: Sent[] = [];
  const writer: CellWriter = (content, update) => {
    const data = content.data as Record<string, unknown>;
    sent.push({
      doc: data[MAMBALAB_MIME] as DisplayDoc,
      text: data['text/plain'] as string,
      html: data['text/html'] as string,
      update,
      displayId: content.transient.display_id,
      at: performance.now(),
    });
  };
  return { writer, sent };
}

function watching(writer: () => CellWriter | undefined, minIntervalMs = 250) {
  const watcher = new LiveFitWatcher({ writer, minIntervalMs });
  const previous = setFitWatcher(watcher);
  return { watcher, restore: () => setFitWatcher(previous) };
}

test('a fit in a cell draws one output that updates in place, at most 4 times a second', async () => {
  const cell = recordingCell();
  const w = watching(() => cell.writer);
  try {
    const { trainer } = tinyTrainer();
    // Slow steps down so the fit spans several redraw intervals.
    const data = tinyData();
    const started = performance.now();
    const result = await trainer.fit(data, { steps: 30, evalEvery: 10, evalBatches: 1, name: 'tiny', onStep: () => {
      const until = performance.now() + 20;
      while (performance.now() < until);
    } });
    const seconds = (performance.now() - started) / 1000;
    assert.equal(result.steps, 30);
    const { sent } = cell;
    assert.ok(sent.length >= 3, `only ${sent.length} draws`);
    assert.ok(sent.length <= Math.ceil(seconds * 4) + 2, `${sent.length} draws in ${seconds.toFixed(2)} s`);
    assert.equal(sent[0]!.update, false);
    assert.ok(sent.slice(1).every((s) => s.update), 'later draws update the first');
    assert.equal(new Set(sent.map((s) => s.displayId)).size, 1, 'one display id');
    for (let i = 1; i < sent.length - 1; i++) assert.ok(sent[i]!.at - sent[i - 1]!.at >= 240, `draws ${i - 1} and ${i} are ${sent[i]!.at - sent[i - 1]!.at} ms apart`);
    for (const s of sent) assert.equal(schemaErrors(JSON.parse(JSON.stringify(s.doc))), '');

    const during = sent.find((s) => s.doc.progress && s.doc.progress.step > 0);
    assert.ok(during, 'a draw during training has a progress line');
    assert.match(during.text, /tiny: step \d+ \/ 30 \(\d+%\) · loss \d+\.\d{4} · [\d.k]+ tokens\/s · [\dhms. ]+ left/);
    const last = sent.at(-1)!;
    assert.equal(last.doc.progress, undefined, 'the final draw has no progress line');
    assert.equal(last.doc.runs.length, 1);
    const run = last.doc.runs[0]!;
    assert.deepEqual([run.id, run.status, run.train.step.length], ['tiny', 'done', 30]);
    assert.deepEqual(run.train.loss, result.history.map((m) => m.loss));
    assert.deepEqual(run.validation?.step, [10, 20, 30]);
    assert.equal(run.model?.dModel, 16);
  } finally {
    w.restore();
  }
});

test('every fit of one cell goes into the same output; a new cell gets a new one', async () => {
  let cell = recordingCell();
  const w = watching(() => cell.writer, 0);
  try {
    const data = tinyData();
    await tinyTrainer().trainer.fit(data, { steps: 2, evalBatches: 1, name: 'a' });
    await tinyTrainer().trainer.fit(data, { steps: 2, evalBatches: 1, name: 'a' });
    assert.deepEqual(cell.sent.at(-1)!.doc.runs.map((r) => r.id), ['a', 'a #2']);
    const first = cell;
    cell = recordingCell();
    await tinyTrainer().trainer.fit(data, { steps: 2, evalBatches: 1 });
    assert.deepEqual(cell.sent.at(-1)!.doc.runs.map((r) => r.name), ['run 1']);
    assert.notEqual(cell.sent[0]!.displayId, first.sent[0]!.displayId);
  } finally {
    w.restore();
  }
});

test('an MoE fit also draws the tokens routed to each expert, per layer', async () => {
  const cell = recordingCell();
  const w = watching(() => cell.writer, 0);
  try {
    await tinyTrainer(TINY_MOE).trainer.fit(tinyData(), { steps: 4, evalBatches: 1, name: 'moe' });
    const last = cell.sent.at(-1)!;
    const experts = last.doc.runs[0]!.experts!;
    assert.deepEqual([experts.layers, experts.numExperts, experts.step], [[1, 3], 4, [1, 2, 3, 4]]);
    const { balance, ...counts } = experts;
    assert.deepEqual(balance, expertBalance(counts), 'the kernel sends the balance of the counts it sends');
    assert.deepEqual(last.doc.plots.map((p) => p.kind), ['loss', 'experts']);
    assert.equal(schemaErrors(JSON.parse(JSON.stringify(last.doc))), '');
    assert.match(last.text, /moe tokens per expert at step 4: layer 1 \d+\/\d+\/\d+\/\d+ \(max\/mean \d\.\d\d\), layer 3 \d+\/\d+\/\d+\/\d+ \(max\/mean \d\.\d\d\)/);
    assert.match(last.html, /<li>moe tokens per expert at step 4: layer 1/);
  } finally {
    w.restore();
  }
});

test('interrupt stops the fit at the next step boundary and rejects it; the cell trains no more', async () => {
  const cell = recordingCell();
  const w = watching(() => cell.writer, 0);
  try {
    const data = tinyData();
    const { trainer } = tinyTrainer();
    let interruptedOk: boolean | undefined;
    const fit = trainer.fit(data, { steps: 100, evalBatches: 1, name: 'long', onStep: (m) => {
      if (m.step === 5) interruptedOk = w.watcher.interrupt();
    } });
    const error = await fit.then(() => assert.fail('fit resolved'), (e: unknown) => e);
    assert.ok(error instanceof TrainingInterrupted, String(error));
    assert.equal(error.message, 'long: stopped after 5 of 100 steps (at step 5)');
    assert.equal(String(error.stack), 'TrainingInterrupted: long: stopped after 5 of 100 steps (at step 5)', 'no stack frames in the notebook');
    assert.deepEqual([error.result.stopped, error.result.steps], [true, 5]);
    assert.equal(interruptedOk, true);
    assert.equal(trainer.stepCount, 5);
    assert.equal(cell.sent.at(-1)!.doc.runs[0]!.status, 'stopped');
    assert.equal(w.watcher.interrupt(), false, 'nothing left to stop: the kernel interrupts the cell itself');

    // Code of that cell that caught the interrupt cannot train on.
    await assert.rejects(trainer.fit(data, { steps: 10, evalBatches: 1 }), /stopped after 0 of 10 steps/);
    assert.equal(trainer.stepCount, 5);
  } finally {
    w.restore();
  }
});

test('a fit that throws shows its run as failed', async () => {
  const cell = recordingCell();
  const w = watching(() => cell.writer, 0);
  try {
    const data = tinyData();
    const original = data.sampler.bind(data);
    data.sampler = (split, options) => {
      const inner = original(split, options);
      let n = 0;
      return { next: () => { if (split === 'train' && ++n === 3) throw new Error('disk read failed'); return inner.next(); }, state: () => inner.state() };
    };
    await assert.rejects(tinyTrainer().trainer.fit(data, { steps: 10, evalBatches: 1 }), /disk read failed/);
    const run = cell.sent.at(-1)!.doc.runs[0]!;
    assert.deepEqual([run.status, run.train.step], ['failed', [1, 2]]);
  } finally {
    w.restore();
  }
});

test('outside a notebook cell nothing is drawn and fit() runs as usual', async () => {
  const w = watching(() => undefined);
  try {
    const result = await tinyTrainer().trainer.fit(tinyData(), { steps: 2, evalBatches: 1 });
    assert.equal(result.steps, 2);
    assert.equal(w.watcher.interrupt(), false);
  } finally {
    w.restore();
  }
});

test('skipped non-finite steps show on the status line and as a series; a diverged fit shows its run as failed', async () => {
  const cell = recordingCell();
  const w = watching(() => cell.writer, 0);
  try {
    const fit = tinyTrainer({}, { lr: 1000 }).trainer.fit(tinyData(), { steps: 40, evalBatches: 1, name: 'hot', maxBadSteps: 3 });
    await assert.rejects(fit, /training diverged/);
    const during = cell.sent.filter((s) => s.doc.progress?.skippedSteps);
    assert.ok(during.length >= 2, 'draws while skipping');
    assert.match(during.at(-1)!.text, /· 3 non-finite steps skipped/);
    const run = cell.sent.at(-1)!.doc.runs[0]!;
    assert.equal(run.status, 'failed');
    assert.deepEqual(run.train.skipped?.slice(-3), [1, 1, 1]);
    assert.equal(schemaErrors(JSON.parse(JSON.stringify(cell.sent.at(-1)!.doc))), '');
  } finally {
    w.restore();
  }
});

test('a loss spike stays on the status line as a warning', async () => {
  const cell = recordingCell();
  const w = watching(() => cell.writer, 0);
  try {
    const { model, trainer } = tinyTrainer();
    const spiked: number[] = [];
    // Weights flipped and blown up by hand for step 25 only: its loss jumps far above its running average.
    const norm = model.getParameter('backbone.norm_f.weight');
    await trainer.fit(tinyData(), { steps: 27, evalBatches: 1, name: 'spiky', onStep: (m) => {
      if (m.lossSpike !== undefined) spiked.push(m.step);
      if (m.step === 24) model.setParameter('backbone.norm_f.weight', norm.map((v) => v * -60));
      if (m.step === 25) model.setParameter('backbone.norm_f.weight', norm);
    } });
    assert.deepEqual(spiked, [25]);
    const after = cell.sent.filter((s) => (s.doc.progress?.step ?? 0) >= 26);
    assert.ok(after.length > 0);
    assert.match(after[0]!.text, /· ⚠ loss spike at step 25: \d+\.\d× its running average/, 'still shown after the step');
  } finally {
    w.restore();
  }
});
