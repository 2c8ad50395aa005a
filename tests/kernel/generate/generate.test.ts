import assert from 'node:assert/strict';
import { test } from 'node:test';

import { generate, setGenerateWatcher, type GenerateWatch } from '../../../kernel/src/generate/generate.js';
import { GenerationInterrupted, type GenerateProgress } from '../../../kernel/src/models/generation.js';
import { createModel } from '../../../kernel/src/models/model.js';

const model = createModel({ vocabSize: 200, dModel: 16, pattern: 'M*2', seed: 4 });

test('without a watcher, generate is model.generate', async () => {
  setGenerateWatcher(undefined);
  const want = await model.generate([1, 2, 3], { maxTokens: 4 });
  const got = await generate(model, [1, 2, 3], { maxTokens: 4 });
  assert.deepEqual(got.tokens, want.tokens);
  const batch = await generate(model, [[1, 2, 3], [4]], { maxTokens: 2 });
  assert.equal(batch.length, 2);
});

test('a watcher sees every chunk and the end; the caller still gets onToken', async () => {
  const updates: GenerateProgress[] = [];
  const ends: unknown[] = [];
  let started: number | undefined;
  setGenerateWatcher({
    start: (_m, { maxTokens }) => {
      started = maxTokens;
      return { update: (p) => updates.push(p), end: (o) => ends.push(o) } satisfies GenerateWatch;
    },
  });
  let mine = 0;
  try {
    const result = await generate(model, [5, 6], { maxTokens: 7, onToken: () => mine++ });
    assert.equal(started, 7);
    assert.ok(updates.length >= 1 && mine === updates.length);
    assert.deepEqual(updates.at(-1)!.generations[0]!.tokens, result.tokens);
    assert.deepEqual(ends, [{ result: [result] }]);
  } finally {
    setGenerateWatcher(undefined);
  }
});

test("the watcher's signal stops generation with GenerationInterrupted, and the watcher is told", async () => {
  const controller = new AbortController();
  const ends: unknown[] = [];
  setGenerateWatcher({ start: () => ({ signal: controller.signal, update: () => controller.abort(), end: (o) => ends.push(o) }) });
  try {
    await assert.rejects(generate(model, [5, 6], { maxTokens: 500 }), GenerationInterrupted);
    assert.equal(ends.length, 1);
    assert.ok((ends[0] as { error: unknown }).error instanceof GenerationInterrupted);
  } finally {
    setGenerateWatcher(undefined);
  }
});
