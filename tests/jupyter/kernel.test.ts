// The "Mamba Lab (TypeScript)" kernel over the Jupyter protocol (jupyter_client): start,
// import mambalab, a training output updating in place, interrupt during training, errors
// in cells, restart. One kernel session, asserted step by step.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';

import { MAMBALAB_MIME, type DisplayDoc } from '@mambalab/contract';

import { schemaErrors } from '../support/schema.js';
import { runDriver, streamText, type DriverMessage, type DriverStep } from '../support/jupyter.js';
import { C4_SAMPLE, scratchDir } from '../helpers.js';

const SETUP = `import { createModel, loadRun, loadTextCorpus, Trainer, trainRun, type TokenSource } from 'mambalab';
const data = loadTextCorpus('small.jsonl');
const newTrainer = () => new Trainer(createModel({ dModel: 16, pattern: 'M*1' }), { batchSize: 2, seqLen: 32, lr: 3e-3 });
const t1 = newTrainer();
// Declared before the cell that is interrupted: tslab forgets the declarations of a failed cell.
const t2 = newTrainer();
data.stats('train').documents`;

const FLAKY = `const flaky: TokenSource = {
  description: 'flaky',
  vocabSize: data.vocabSize,
  stats: (split) => data.stats(split),
  sampler(split, options) {
    const inner = data.sampler(split, options);
    let n = 0;
    return {
      next() {
        if (split === 'train' && ++n === 4) throw new Error('disk read failed');
        return inner.next();
      },
      state: () => inner.state(),
    };
  },
};
const t3 = newTrainer();`;

// Generation after the restart: a fresh kernel, a small Mamba (GPT-2's vocabulary, for text).
const GENERATE_SETUP = `import { createModel, generate } from 'mambalab';
const gm = createModel({ dModel: 16, pattern: 'M*2', seed: 1 });`;

const script = [
  // Before any cell used mambalab:
  { op: 'execute', code: `Object.keys(require.cache).filter((path) => path.endsWith('mambalab.node'))` },
  { op: 'execute', code: SETUP },
  { op: 'execute', code: `const r1 = await trainRun(t1, data, { steps: 25, dir: 'runs/live', evalEvery: 5 });` },
  { op: 'execute', code: `await trainRun(t2, data, { steps: 5000, dir: 'runs/interrupted' });\nconsole.log('this line runs only if training was not interrupted');`, interrupt_after_updates: 2 },
  { op: 'execute', code: `const back = loadRun('runs/interrupted');\nJSON.stringify([back.status, back.steps, back.checkpointStep, t2.stepCount])` },
  { op: 'execute', code: `(await trainRun(t2, data, { steps: 3, dir: 'runs/interrupted' })).steps - back.steps` },
  { op: 'execute', code: `createModel({ dModel: -1 })` },
  { op: 'execute', code: `loadTextCorpus('missing.json.gz')` },
  // Declared in a cell of their own: tslab forgets the declarations of a cell that fails.
  { op: 'execute', code: FLAKY },
  { op: 'execute', code: `await trainRun(t3, flaky, { steps: 10, dir: 'runs/failed' });` },
  { op: 'execute', code: `const f = loadRun('runs/failed');\nJSON.stringify([f.status, f.steps, f.error, t3.stepCount])` },
  { op: 'execute', code: `1 + 1` },
  // With no training to stop, an interrupt ends the cell at once, as in tslab.
  { op: 'execute', code: `await new Promise((resolve) => setTimeout(resolve, 60_000));`, interrupt_after_s: 1 },
  { op: 'restart' },
  { op: 'execute', code: `t1.stepCount` },
  { op: 'execute', code: `import { preset } from 'mambalab';\npreset('mamba', 'tiny').config.dModel` },
  { op: 'execute', code: GENERATE_SETUP },
  { op: 'execute', code: `(await generate(gm, 'The history of', { maxTokens: 40 })).tokens.length` },
  { op: 'execute', code: `await generate(gm, 'Hello', { maxTokens: 1000000 });\nconsole.log('this line runs only if generation was not interrupted');`, interrupt_after_updates: 2 },
];

const cwd = scratchDir('mambalab-kernel-');
let steps: DriverStep[];
let kernelInfo: Record<string, unknown>;

function displays(step: DriverStep): (DriverMessage & { doc: DisplayDoc })[] {
  return (step.messages ?? [])
    .filter((m) => (m.msg_type === 'display_data' || m.msg_type === 'update_display_data') && m.content.data?.[MAMBALAB_MIME])
    .map((m) => ({ ...m, doc: m.content.data![MAMBALAB_MIME] as DisplayDoc }));
}

before(async () => {
  // Forty real C4 documents: enough text for 2 × 33-token windows, quick to tokenize.
  const { gunzipSync } = await import('node:zlib');
  const lines = gunzipSync(readFileSync(C4_SAMPLE)).toString('utf8').split('\n').filter(Boolean).slice(0, 40);
  writeFileSync(join(cwd, 'small.jsonl'), lines.join('\n') + '\n');
  const result = await runDriver({ cwd, steps: script });
  steps = result.steps;
  kernelInfo = result.kernel_info;
});

test('the kernel starts, answers kernel_info as TypeScript, and imports mambalab', () => {
  assert.equal((kernelInfo.language_info as { name: string }).name, 'typescript');
  const setup = steps[1]!;
  assert.equal(setup.reply?.status, 'ok', streamText(setup, 'stderr'));
  assert.equal(streamText(setup, 'stdout').trim(), '38');
});

test('the kernel loaded the native engine once, at start', () => {
  const loaded = steps[0]!;
  assert.equal(loaded.reply?.status, 'ok', streamText(loaded, 'stderr'));
  assert.match(streamText(loaded, 'stdout'), /^\[\s*'[^']*native\/build\/Release\/mambalab\.node'\s*\]\s*$/);
});

test('a training cell shows one output that updates in place, at most 4 times a second', () => {
  const train = steps[2]!;
  assert.equal(train.reply?.status, 'ok', streamText(train, 'stderr'));
  const shown = displays(train);
  assert.ok(shown.length >= 3, `${shown.length} display messages`);
  assert.equal(shown[0]!.msg_type, 'display_data');
  assert.ok(shown.slice(1).every((m) => m.msg_type === 'update_display_data'));
  const ids = new Set(shown.map((m) => m.content.transient?.display_id));
  assert.equal(ids.size, 1, 'one display id');
  assert.ok([...ids][0], 'the display has an id');
  for (const m of shown) {
    assert.equal(schemaErrors(m.doc), '', 'every bundle matches the schema');
    assert.equal(typeof m.content.data!['text/plain'], 'string');
    assert.match(m.content.data!['text/html'] as string, /^<div class="mambalab-output">/);
  }
  const times = shown.map((m) => Date.parse(m.date));
  for (let i = 1; i < times.length - 1; i++) assert.ok(times[i]! - times[i - 1]! >= 230, `updates ${i - 1} and ${i} are ${times[i]! - times[i - 1]!} ms apart`);
  assert.ok(shown.some((m) => m.doc.progress && /step \d+ \/ 25 \(\d+%\) · loss/.test(m.content.data!['text/plain'] as string)), 'a progress line while training');
  const final = shown.at(-1)!.doc;
  assert.equal(final.progress, undefined);
  assert.deepEqual([final.runs[0]!.id, final.runs[0]!.status, final.runs[0]!.train.step.length], ['live', 'done', 25]);
  assert.deepEqual(final.runs[0]!.validation?.step, [5, 10, 15, 20, 25]);
});

test('interrupt stops training at a step boundary, keeps the run and its checkpoint, and the kernel goes on', () => {
  const stopped = steps[3]!;
  assert.equal(stopped.reply?.status, 'error', 'an interrupted cell ends in error, so "run all" stops there');
  assert.ok((stopped.interrupt_to_idle_s ?? Infinity) < 10, `idle ${stopped.interrupt_to_idle_s} s after the interrupt`);
  const message = streamText(stopped, 'stderr');
  const match = /^\[TrainingInterrupted: interrupted: stopped after (\d+) of 5000 steps \(at step \1\); the run and its checkpoint are saved in runs\/interrupted\]\n$/.exec(message);
  assert.ok(match, message);
  assert.equal(streamText(stopped, 'stdout'), '', 'the rest of the cell does not run');
  const final = displays(stopped).at(-1)!.doc.runs[0]!;
  assert.equal(final.status, 'stopped');
  const n = Number(match[1]);
  assert.ok(n >= 1 && n < 5000, `stopped after ${n} steps`);
  assert.equal(final.train.step.length, n);

  const after = steps[4]!;
  assert.equal(after.reply?.status, 'ok', streamText(after, 'stderr'));
  assert.equal(streamText(after, 'stdout').trim(), JSON.stringify(['stopped', n, n, n]));
  const more = steps[5]!;
  assert.equal(more.reply?.status, 'ok', streamText(more, 'stderr'));
  assert.equal(streamText(more, 'stdout').trim(), '3', 'the same trainer continues the run');
});

test('bad input in a cell gives a readable error, not a dead kernel', () => {
  const [badConfig, missing] = [steps[6]!, steps[7]!];
  assert.equal(badConfig.reply?.status, 'error');
  assert.match(streamText(badConfig, 'stderr'), /MambalabError: config\.dModel: expected an integer in \[1, 65536\], got -1/);
  assert.equal(missing.reply?.status, 'error');
  assert.match(streamText(missing, 'stderr'), /input missing\.json\.gz does not exist/);
  assert.equal(steps[11]!.reply?.status, 'ok');
  assert.equal(streamText(steps[11]!, 'stdout').trim(), '2');
});

test('an error during training is reported, and the run and trainer stay consistent', () => {
  const failed = steps[9]!;
  assert.equal(steps[8]!.reply?.status, 'ok', streamText(steps[8]!, 'stderr'));
  assert.equal(failed.reply?.status, 'error');
  assert.match(streamText(failed, 'stderr'), /disk read failed/);
  assert.equal(displays(failed).at(-1)!.doc.runs[0]!.status, 'failed');
  const after = steps[10]!;
  assert.equal(after.reply?.status, 'ok', streamText(after, 'stderr'));
  assert.equal(streamText(after, 'stdout').trim(), '["failed",3,"disk read failed",3]');
});

test('an interrupt with no training running ends the cell at once', () => {
  const waiting = steps[12]!;
  assert.equal(waiting.reply?.status, 'error');
  assert.match(streamText(waiting, 'stderr'), /Interrupted asynchronously/);
  assert.ok((waiting.interrupt_to_idle_s ?? Infinity) < 5, `idle ${waiting.interrupt_to_idle_s} s after the interrupt`);
});

test('restart gives a fresh kernel where mambalab imports again', () => {
  const restart = steps[13]!;
  assert.equal(restart.op, 'restart');
  assert.equal(restart.alive, true);
  const gone = steps[14]!;
  assert.equal(gone.reply?.status, 'error');
  assert.match(streamText(gone, 'stderr'), /Cannot find name 't1'/);
  const fresh = steps[15]!;
  assert.equal(fresh.reply?.status, 'ok', streamText(fresh, 'stderr'));
  assert.equal(streamText(fresh, 'stdout').trim(), '64');
});

/** The generated-text outputs of a step (text/plain and HTML, no document of ours). */
function textDisplays(step: DriverStep): DriverMessage[] {
  return (step.messages ?? []).filter(
    (m) => (m.msg_type === 'display_data' || m.msg_type === 'update_display_data') && String(m.content.data?.['text/html'] ?? '').startsWith('<div class="mambalab-generate">'),
  );
}

test('a generate() cell streams into one output updated in place, ending with the tokens and tokens/s', () => {
  const [setup, run] = [steps[16]!, steps[17]!];
  assert.equal(setup.reply?.status, 'ok', streamText(setup, 'stderr'));
  assert.equal(run.reply?.status, 'ok', streamText(run, 'stderr'));
  assert.equal(streamText(run, 'stdout').trim(), '40');
  const shown = textDisplays(run);
  assert.ok(shown.length >= 2, `${shown.length} display messages`);
  assert.equal(shown[0]!.msg_type, 'display_data');
  assert.ok(shown.slice(1).every((m) => m.msg_type === 'update_display_data'));
  assert.equal(new Set(shown.map((m) => m.content.transient?.display_id)).size, 1, 'one display id');
  assert.match(String(shown.at(-1)!.content.data!['text/plain']), /\ndone: 40\/40 tokens · .+ tokens\/s/);
});

test('interrupt stops generation between chunks: the cell ends with GenerationInterrupted and the output says so', () => {
  const stopped = steps[18]!;
  assert.equal(stopped.reply?.status, 'error');
  assert.ok((stopped.interrupt_to_idle_s ?? Infinity) < 10, `idle ${stopped.interrupt_to_idle_s} s after the interrupt`);
  assert.match(streamText(stopped, 'stderr'), /GenerationInterrupted: generate: interrupted after \d+ of 1000000 tokens/);
  assert.equal(streamText(stopped, 'stdout'), '', 'the rest of the cell does not run');
  assert.match(String(textDisplays(stopped).at(-1)!.content.data!['text/plain']), /\ninterrupted: \d+\/1000000 tokens/);
});
