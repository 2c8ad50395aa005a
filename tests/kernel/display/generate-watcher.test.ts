import assert from 'node:assert/strict';
import { test } from 'node:test';

import { generationBundle, LiveGenerateWatcher } from '../../../kernel/src/display/generate-watcher.js';
import type { CellWriter } from '../../../kernel/src/display/tslab.js';
import { generate, setGenerateWatcher } from '../../../kernel/src/generate/generate.js';
import { GenerationInterrupted } from '../../../kernel/src/models/generation.js';
import { createModel } from '../../../kernel/src/models/model.js';

const model = createModel({ vocabSize: 200, dModel: 16, pattern: 'M*2', seed: 4 });

function recordingWriter() {
  const sent: { data: Record<string, unknown>; id: string | undefined; update: boolean }[] = [];
  const writer: CellWriter = (content, update) => sent.push({ data: content.data, id: content.transient.display_id, update });
  return { sent, writer };
}

test('a generate() in a cell is one output updated in place, ending with its text and tokens/s', async () => {
  const fresh = recordingWriter();
  setGenerateWatcher(new LiveGenerateWatcher({ writer: () => fresh.writer, minIntervalMs: 0 }));
  try {
    await generate(model, [3, 4, 5], { maxTokens: 6 });
  } finally {
    setGenerateWatcher(undefined);
  }
  assert.ok(fresh.sent.length >= 2, `${fresh.sent.length} messages`);
  assert.equal(fresh.sent[0]!.update, false);
  assert.ok(fresh.sent.slice(1).every((m) => m.update && m.id === fresh.sent[0]!.id), 'later messages update the first');
  const last = fresh.sent.at(-1)!.data['text/plain'] as string;
  assert.match(last, /^done: 6\/6 tokens · .* tokens\/s · [\d.]+ ms\/token$/m);
});

test('interrupt() stops a running generation: GenerationInterrupted, and the output says so', async () => {
  const { sent, writer } = recordingWriter();
  const watcher = new LiveGenerateWatcher({ writer: () => writer, minIntervalMs: 0 });
  setGenerateWatcher(watcher);
  try {
    assert.equal(watcher.interrupt(), false, 'nothing to stop yet');
    const running = generate(model, [1], { maxTokens: 100_000, onToken: () => watcher.interrupt() });
    await assert.rejects(running, GenerationInterrupted);
  } finally {
    setGenerateWatcher(undefined);
  }
  assert.match(sent.at(-1)!.data['text/plain'] as string, /^interrupted: \d+\/100000 tokens/m);
});

test('generationBundle escapes the text in HTML and shows every sequence', () => {
  const timing = { prefillMs: 1, msPerToken: 2, tokensPerS: 500, stepMs: [1, 2], cudaGraph: false };
  const bundle = generationBundle(
    [{ tokens: [1], text: 'a <b>', finishReason: 'maxTokens', timing }, { tokens: [2], text: 'second', finishReason: 'stop', timing }],
    2, 4, 'generating');
  assert.equal(bundle['text/plain'], 'a <b>\nsecond\ngenerating: 2/4 tokens · 500 tokens/s · 2.00 ms/token');
  assert.match(bundle['text/html'], /a &lt;b&gt;/);
});
