import assert from 'node:assert/strict';
import { test } from 'node:test';

import { MambalabError } from '../../../kernel/src/errors.js';
import { GenerationInterrupted, type GenerateOptions } from '../../../kernel/src/models/generation.js';
import { createModel, type Model } from '../../../kernel/src/models/model.js';
import { preset } from '../../../kernel/src/models/presets.js';

const VOCAB = 300;
const FAMILIES = ['mamba', 'moe-mamba', 'parallel-moe-mamba', 'blackmamba', 'transformer', 'jamba'] as const;

function tiny(family: (typeof FAMILIES)[number], dtype: 'float32' | 'float64' = 'float32'): Model {
  return createModel({ ...preset(family, 'tiny').config, vocabSize: VOCAB, seed: 5, dtype });
}

function sequence(len: number, seed: number): number[] {
  return Array.from({ length: len }, (_, i) => (i * 37 + seed * 101 + ((i * i) % 13)) % VOCAB);
}

/** ‖a − b‖ / ‖b‖ */
function relative(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return Math.sqrt(num / den);
}

// The recurrent path (prefill of a prompt, then one decode step per given token) against the
// parallel forward's logits at every later position, for two rows of different prompts.
async function worstRecurrentError(model: Model, prompt: number): Promise<number> {
  const len = 20;
  const rows = [sequence(len, 1), sequence(len, 2)];
  const parallel = await model.logits(rows);
  const sampling = { temperature: 0, topK: 0, topP: 1, minP: 0, repetitionPenalty: 1, seed: 0 };
  let logits = await model.engine.generateStart(Int32Array.from(rows.flatMap((r) => r.slice(0, prompt))), Int32Array.of(prompt, prompt), len, sampling, new Int32Array());
  let worst = 0;
  for (let t = prompt - 1; t < len; t++) {
    if (t >= prompt) logits = await model.engine.generateFeed(Int32Array.from(rows, (r) => r[t]!));
    rows.forEach((_, r) => {
      worst = Math.max(worst, relative(logits.subarray(r * VOCAB, (r + 1) * VOCAB), parallel[r]![t]!));
    });
  }
  return worst;
}

for (const family of FAMILIES) {
  test(`${family}: recurrent logits equal the parallel forward's at every position (fp32 ≤ 1e-5, fp64 ≤ 1e-11)`, async () => {
    for (const prompt of [1, 7]) {
      const fp32 = await worstRecurrentError(tiny(family), prompt);
      assert.ok(fp32 <= 1e-5, `fp32, prompt ${prompt}: relative error ${fp32}`);
      const fp64 = await worstRecurrentError(tiny(family, 'float64'), prompt);
      assert.ok(fp64 <= 1e-11, `fp64, prompt ${prompt}: relative error ${fp64}`);
    }
  });
}

test('BlackMamba as released (GeGLU experts, a final LayerNorm with a bias): recurrent logits equal the parallel forward\'s', async () => {
  for (const dtype of ['float32', 'float64'] as const) {
    const model = createModel({ ...preset('blackmamba', 'tiny').config, expertKind: 'geglu', finalNorm: 'layernorm', vocabSize: VOCAB, seed: 5, dtype });
    // A bias and a scale that are not LayerNorm's initial 0 and 1, so that both are seen.
    const d = model.config.dModel;
    model.setParameter('backbone.norm_f.bias', Array.from({ length: d }, (_, i) => Math.sin(i) * 0.5));
    model.setParameter('backbone.norm_f.weight', Array.from({ length: d }, (_, i) => 1 + Math.cos(i) * 0.3));
    const worst = Math.max(await worstRecurrentError(model, 1), await worstRecurrentError(model, 7));
    assert.ok(worst <= (dtype === 'float32' ? 1e-5 : 1e-11), `${dtype}: relative error ${worst}`);
  }
});

test('greedy decoding is the argmax of the parallel logits, token after token, and repeats exactly', async () => {
  const model = tiny('jamba');
  const prompt = sequence(6, 3);
  const first = await model.generate(prompt, { maxTokens: 6 });
  assert.deepEqual((await model.generate(prompt, { maxTokens: 6 })).tokens, first.tokens);
  const logits = await model.logits([[...prompt, ...first.tokens]]);
  first.tokens.forEach((token, i) => {
    const row = logits[0]![prompt.length - 1 + i]!;
    assert.equal(token, row.indexOf(Math.max(...row)), `token ${i}`);
  });
  assert.equal(first.finishReason, 'maxTokens');
  assert.equal(first.timing.stepMs.length, 6);
  assert.equal(first.timing.cudaGraph, false, 'the CPU replays no graphs');
  assert.ok(first.timing.msPerToken > 0 && first.timing.tokensPerS > 0);
});

test('the same seed gives the same samples; another seed other samples', async () => {
  const model = tiny('moe-mamba');
  const options: GenerateOptions = { maxTokens: 12, temperature: 1.2, topK: 50, topP: 0.95, minP: 0.01, repetitionPenalty: 1.1, seed: 7 };
  const a = await model.generate(sequence(5, 4), options);
  const b = await model.generate(sequence(5, 4), options);
  const c = await model.generate(sequence(5, 4), { ...options, seed: 8 });
  assert.deepEqual(a.tokens, b.tokens);
  assert.notDeepEqual(a.tokens, c.tokens);
});

test('a padded batch (left or right, with a mask) generates what each prompt generates alone', async () => {
  const model = tiny('transformer');
  const short = sequence(3, 5);
  const long = sequence(7, 6);
  const alone = [await model.generate(short, { maxTokens: 5 }), await model.generate(long, { maxTokens: 5 })];
  const left = await model.generate([[0, 0, 0, 0, ...short], long], { maxTokens: 5, mask: [[0, 0, 0, 0, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1]] });
  const right = await model.generate([[...short, 9, 9, 9, 9], long], { maxTokens: 5, mask: [[1, 1, 1, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1, 1]] });
  const ragged = await model.generate([short, long], { maxTokens: 5 });
  for (const batch of [left, right, ragged]) assert.deepEqual(batch.map((g) => g.tokens), alone.map((g) => g.tokens));
});

test('text prompts are encoded and the output decoded with the tokenizer; stop strings and ids end a sequence', async () => {
  const model = createModel({ ...preset('mamba', 'tiny').config, seed: 2 });
  const free = await model.generate('The cat sat on', { maxTokens: 8 });
  assert.equal(free.text.length > 0, true);
  const stopId = free.tokens[2]!;
  const byId = await model.generate('The cat sat on', { maxTokens: 8, stop: stopId });
  assert.equal(byId.finishReason, 'stop');
  assert.deepEqual(byId.tokens, free.tokens.slice(0, free.tokens.indexOf(stopId) + 1));
  const piece = free.text.slice(free.text.length - 3);
  const byString = await model.generate('The cat sat on', { maxTokens: 8, stop: [piece] });
  assert.equal(byString.finishReason, 'stop');
  assert.equal(byString.text, free.text.slice(0, free.text.indexOf(piece)));
});

test('onToken streams the sequences so far; an aborted signal stops with GenerationInterrupted', async () => {
  const model = tiny('mamba');
  const seen: number[] = [];
  const result = await model.generate(sequence(4, 1), { maxTokens: 5, onToken: (p) => seen.push(p.generations[0]!.tokens.length) });
  assert.deepEqual(seen.at(-1), 5);
  assert.ok(seen.every((n, i) => i === 0 || n >= seen[i - 1]!));
  const controller = new AbortController();
  const stopped = model.generate(sequence(4, 1), {
    maxTokens: 200,
    onToken: () => controller.abort(),
    signal: controller.signal,
  });
  await assert.rejects(stopped, (e: unknown) => e instanceof GenerationInterrupted && e.result[0]!.tokens.length > 0 && e.result[0]!.tokens.length < 200 && result.tokens.length === 5);
});

test('every option is validated with an error naming it', async () => {
  const model = tiny('mamba');
  const bad: [GenerateOptions | Record<string, unknown>, RegExp][] = [
    [{ maxTokens: 0 }, /maxTokens/],
    [{ maxTokens: 1.5 }, /maxTokens/],
    [{ temperature: -1 }, /temperature/],
    [{ topK: -2 }, /topK/],
    [{ topP: 0 }, /topP/],
    [{ topP: 1.5 }, /topP/],
    [{ minP: 2 }, /minP/],
    [{ repetitionPenalty: 0 }, /repetitionPenalty/],
    [{ seed: -1 }, /seed/],
    [{ stop: [VOCAB + 5] }, /stop/],
    [{ stop: [''] }, /stop/],
    [{ tokenizer: 'bert' }, /tokenizer/],
    [{ mask: [[1, 0, 1]] }, /mask row 0 has padding between/],
    [{ mask: [[1, 1]] }, /mask row 0 must be 3 values/],
    [{ temprature: 1 }, /unknown option 'temprature'/],
  ];
  for (const [options, message] of bad) {
    await assert.rejects(model.generate([[1, 2, 3]], options as GenerateOptions), (e: unknown) => e instanceof MambalabError && message.test(e.message), JSON.stringify(options));
  }
  await assert.rejects(model.generate([], {}), /the prompt has no tokens/);
  await assert.rejects(model.generate([[1, 2], [0, 0]], { mask: [[1, 1], [0, 0]] }), /prompt 1 has no tokens/);
  await assert.rejects(model.generate([1, VOCAB], {}), /position 1: 300 is not a token id/);
  await assert.rejects(model.generate([1, 2], { stop: 'x' }), /needs a tokenizer/);
  await assert.rejects(model.generate('text', {}), /tokenizer 'gpt2' has 50257 ids, more than the model's vocabSize 300/);
  const positions = createModel({ ...preset('transformer', 'tiny').config, vocabSize: VOCAB, maxPositions: 8 });
  await assert.rejects(positions.generate(sequence(6, 1), { maxTokens: 4 }), /maxTokens 4 is more than the 8 positions/);
});
