import assert from 'node:assert/strict';
import { readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { toBatch } from '../../../kernel/src/data/batch.js';
import { MambalabError } from '../../../kernel/src/errors.js';
import { createModel, loadModel } from '../../../kernel/src/models/model.js';
import { preset } from '../../../kernel/src/models/presets.js';
import { native } from '../../../kernel/src/native.js';
import { Trainer } from '../../../kernel/src/train/trainer.js';
import { randomTokens, scratchDir } from '../../helpers.js';

const small = { vocabSize: 300, dModel: 16, pattern: 'M*2', seed: 3 };

test('forward returns the mean next-token loss, near log(vocab) at initialisation', async () => {
  const model = createModel(small);
  const loss = await model.forward(randomTokens(2, 12, 300));
  assert.ok(Math.abs(loss - Math.log(304)) < 0.3, `loss ${loss} vs log(304) = ${Math.log(304)}`);
});

test('the same seed gives the same weights and loss; another seed does not', async () => {
  const batch = randomTokens(2, 8, 300);
  const [a, b, c] = [createModel(small), createModel(small), createModel({ ...small, seed: 4 })];
  assert.deepEqual(a.getParameter('backbone.layers.1.mixer.in_proj.weight'), b.getParameter('backbone.layers.1.mixer.in_proj.weight'));
  assert.equal(await a.forward(batch), await b.forward(batch));
  assert.notEqual(await a.forward(batch), await c.forward(batch));
});

test('parameters follow mamba_ssm names; counts match the formula', () => {
  const model = createModel(small);
  const names = model.parameters().map((p) => p.name);
  assert.equal(names[0], 'backbone.embedding.weight');
  assert.ok(names.includes('backbone.layers.0.mixer.dt_proj.bias'));
  assert.equal(names.at(-1), 'backbone.norm_f.weight');
  // Per Mamba layer (d, d_inner = 2d, N = 16, R = ceil(d/16), width 4):
  // in_proj 2·di·d + conv di·4 + di + x_proj (R + 2N)·di + dt_proj di·R + di + A_log di·N + D di + out_proj d·di + norm d
  const d = 16, di = 32, R = 1, N = 16;
  const perLayer = 2 * di * d + di * 4 + di + (R + 2 * N) * di + di * R + di + di * N + di + d * di + d;
  assert.deepEqual(model.parameterCount(), {
    total: 304 * d + 2 * perLayer + d,
    embedding: 304 * d,
    nonEmbedding: 2 * perLayer + d,
    active: 2 * perLayer + d,
  });
  const decay = Object.fromEntries(model.parameters().map((p) => [p.name.split('.').slice(-2).join('.'), p.weightDecay]));
  assert.equal(decay['mixer.A_log'], false);
  assert.equal(decay['mixer.D'], false);
  assert.equal(decay['norm.weight'], false);
  assert.equal(decay['conv1d.bias'], false);
  assert.equal(decay['in_proj.weight'], true);
});

test("the MoE-Mamba paper's Mamba baseline has its ~27M non-embedding parameters", () => {
  const model = createModel({ dModel: 512, pattern: 'M*16' });
  assert.equal(model.parameterCount().nonEmbedding, 27_124_224);
});

test('save and loadModel round-trip weights and loss exactly', async () => {
  const dir = scratchDir();
  const batch = randomTokens(3, 10, 300, 7);
  const model = createModel(small);
  model.save(dir);
  const loaded = loadModel(dir);
  assert.deepEqual(loaded.config, model.config);
  assert.equal(await loaded.forward(batch), await model.forward(batch));
});

test('a truncated or foreign checkpoint is a clear error', () => {
  const dir = scratchDir();
  createModel(small).save(dir);
  const weights = join(dir, 'model.safetensors');
  const good = readFileSync(weights);
  truncateSync(weights, good.length - 100);
  assert.throws(() => loadModel(dir), /model\.safetensors is not a valid safetensors file: tensor backbone\.[a-z0-9_.]+ ends at byte \d+ of the data, which holds \d+ bytes \(truncated\?\)/);
  truncateSync(weights, 5);
  assert.throws(() => loadModel(dir), /shorter than the 8-byte header length/);
  writeFileSync(weights, good);
  assert.equal(loadModel(dir, { dtype: 'float64' }).config.dtype, 'float64', 'a float32 file loads into a float64 model');
  const otherShape = scratchDir();
  createModel({ ...small, dModel: 32 }).save(otherShape);
  const model = createModel(small);
  assert.throws(() => model.loadWeights(join(otherShape, 'model.safetensors')), /'backbone\.embedding\.weight' in .* has shape \[304,32\], the model expects \[304,16\]/);
  assert.throws(() => loadModel(scratchDir()), /cannot read .*config\.json/);
});

test("a damaged config.json is named, and cannot ask for a model larger than its weights", () => {
  const dir = scratchDir();
  createModel(small).save(dir);
  const configFile = join(dir, 'config.json');
  const saved = JSON.parse(readFileSync(configFile, 'utf8'));
  const refused = (config: unknown, message: RegExp) => {
    writeFileSync(configFile, JSON.stringify(config));
    assert.throws(() => loadModel(dir), (e: unknown) => e instanceof MambalabError && message.test(e.message) && e.message.includes(configFile), JSON.stringify(config));
  };
  refused(null, /holds null, not a model config object/);
  refused([saved], /not a model config object/);
  refused({ ...saved, dModel: -1 }, /config\.json: config\.dModel: expected an integer in \[1, 65536\], got -1/);
  refused({ ...saved, colour: 'red' }, /config\.json: config\.colour: unknown field/);
  // Valid but not the saved model's: refused from the file sizes, before allocating 65536-wide layers.
  refused({ ...saved, dModel: 65536 }, /model\.safetensors holds \d+ weights, but .*config\.json describes a model of \d+: the two files are not from one save/);
  refused({}, /the two files are not from one save/);
});

test('token ids outside the vocabulary are MambalabErrors, in every pass and in training', async () => {
  const model = createModel(small);
  const outside = (id: number) => ({ name: 'MambalabError', message: new RegExp(`^batch: token id ${id} at position 2 of the batch is outside the vocabulary \\[0, 300\\)`) });
  await assert.rejects(model.forward([[1, 2, 300]]), outside(300));
  await assert.rejects(model.forward([[1, 2, -5]]), outside(-5));
  await assert.rejects(model.lossAndGradients([[1, 2, 300]]), outside(300));
  await assert.rejects(new Trainer(model).step([[1, 2, 300]]), outside(300));
});

test('sequences longer than the learned positions are MambalabErrors naming the field and the length, in every pass', async () => {
  const model = createModel({ ...small, maxPositions: 8 });
  const tooLong = { name: 'MambalabError', message: /^batch: sequences of 9 tokens are longer than config\.maxPositions \(8\)/ };
  const batch = randomTokens(2, 9, 300);
  await assert.rejects(model.forward(batch), tooLong);
  await assert.rejects(model.forward(batch, { routing: 'training' }), tooLong);
  await assert.rejects(model.lossAndGradients(batch), tooLong);
  await assert.rejects(new Trainer(model, { batchSize: 2, seqLen: 9 }).step(batch), tooLong);
  const b = toBatch(batch);
  await assert.rejects(model.engine.evaluate(b.tokens, b.batchSize, b.seqLen + 1), tooLong, 'the trainer\'s evaluation calls the engine directly');
  assert.ok((await model.forward(randomTokens(2, 8, 300))) > 0, 'maxPositions tokens fit');
});

test('attention layers have the engine interface\'s names, shapes and weight decay; learned positions follow the embedding', () => {
  const model = createModel({ model: 'transformer', vocabSize: 300, dModel: 24, pattern: 'AF M', nHeads: 6, nKvHeads: 2, maxPositions: 20, seed: 3 });
  const params = new Map(model.parameters().map((p) => [p.name, p]));
  const names = [...params.keys()];
  assert.deepEqual(names.slice(0, 2), ['backbone.embedding.weight', 'backbone.pos_embedding.weight']);
  assert.deepEqual(params.get('backbone.pos_embedding.weight')!.shape, [20, 24]);
  assert.deepEqual(params.get('backbone.layers.0.attn.in_proj.weight')!.shape, [(6 + 2 * 2) * 4, 24], '[q; k; v] rows, head dim 4');
  assert.deepEqual(params.get('backbone.layers.0.attn.out_proj.weight')!.shape, [24, 6 * 4]);
  assert.ok(params.has('backbone.layers.0.norm.weight'), 'pre-normed like every layer');
  assert.deepEqual(names.filter((n) => n.startsWith('backbone.layers.0.')).sort(), ['backbone.layers.0.attn.in_proj.weight', 'backbone.layers.0.attn.out_proj.weight', 'backbone.layers.0.norm.weight'], 'no biases');
  for (const name of ['backbone.pos_embedding.weight', 'backbone.layers.0.attn.in_proj.weight', 'backbone.layers.0.attn.out_proj.weight']) {
    assert.equal(params.get(name)!.weightDecay, true, name);
  }
  assert.equal(model.parameterCount().embedding, (304 + 20) * 24, 'positions count with the embedding');
});

test('malformed batches are rejected', async () => {
  const model = createModel(small);
  await assert.rejects(async () => model.forward([[1, 2], [3]]), /row 1 has 1 ids, expected 2/);
  await assert.rejects(async () => model.forward([[1]]), /at least 2 token ids/);
  await assert.rejects(async () => model.forward({ tokens: new Int32Array(5), batchSize: 2, seqLen: 2 }), /expected batchSize × \(seqLen \+ 1\) = 6 ids, got 5/);
});

test('a model runs one call at a time and says so', async () => {
  const model = createModel(small);
  const running = model.forward(randomTokens(4, 64, 300));
  await assert.rejects(model.forward([[1, 2]]), /model is busy/);
  assert.throws(() => model.getParameter('backbone.norm_f.weight'), /model is busy/);
  await running;
  assert.equal((await model.forward([[1, 2]])) > 0, true);
});

test('setParameter checks the size; gradients are readable after lossAndGradients', async () => {
  const model = createModel(small);
  assert.throws(() => model.setParameter('backbone.norm_f.weight', [1, 2]), /expected 16 values \(shape \[16\]\), got 2/);
  assert.throws(() => model.getParameter('nope'), /no parameter named 'nope'/);
  await model.lossAndGradients(randomTokens(2, 6, 300));
  const g = model.gradient('backbone.layers.0.mixer.out_proj.weight');
  assert.ok(g.some((v) => v !== 0) && g.every(Number.isFinite));
});

test('gradient(name) before any backward is an error, not zeros; a training step leaves gradients too', async () => {
  const name = 'backbone.layers.0.mixer.out_proj.weight';
  const model = createModel(small);
  const noneYet = { name: 'MambalabError', message: `gradient('${name}'): no gradients yet; lossAndGradients(batch) or a training step computes them` };
  assert.throws(() => model.gradient(name), noneYet);
  await model.forward(randomTokens(2, 6, 300));
  assert.throws(() => model.gradient(name), noneYet, 'forward computes no gradients');
  assert.throws(() => model.gradient('nope'), /no parameter named 'nope'/);
  const trained = createModel(small);
  await new Trainer(trained, { batchSize: 2, seqLen: 6 }).step(randomTokens(2, 6, 300));
  assert.ok(trained.gradient(name).some((v) => v !== 0));
});

const gpu = native().info().gpu;
const noGpuHere = gpu.deviceCount > 0 ? `this machine has a GPU (${gpu.name}): the no-GPU paths are covered by tests/kernel/models/device.test.ts` : false;

test('device "cuda" without a GPU is a clear error that quotes the engine', { skip: noGpuHere }, () => {
  assert.throws(() => createModel({ ...small, device: 'cuda' }), {
    name: 'MambalabError',
    message: `config.device: "cuda" was asked for, but ${gpu.status}; use "cpu" or "auto"`,
  });
  assert.match(gpu.status, /^no GPU/, 'the engine says why there is none');
});

test('device "auto" runs on the CPU without a GPU, and the model says why', { skip: noGpuHere }, async () => {
  const model = createModel({ ...small, device: 'auto' });
  assert.equal(model.device, 'cpu');
  assert.equal(model.deviceNote, `auto: CPU (${gpu.status})`);
  assert.equal(model.computePrecision, 'fp32', 'the CPU computes in the dtype, not config.precision');
  assert.ok((await model.forward(randomTokens(1, 4, 300))) > 0);
});

test('on the CPU the compute precision is the dtype', () => {
  assert.equal(createModel(small).computePrecision, 'fp32');
  assert.equal(createModel({ ...small, dtype: 'float64', precision: 'fp32' }).computePrecision, 'fp64');
  assert.equal(createModel({ ...small, dtype: 'float64' }).getParameter('backbone.norm_f.weight').constructor, Float64Array);
});

test('precision and deterministic are saved, and a config saved before they existed still loads', async () => {
  const dir = scratchDir();
  const model = createModel({ ...small, precision: 'fp32', deterministic: true });
  model.save(dir);
  const saved = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  assert.equal(saved.precision, 'fp32');
  assert.equal(saved.deterministic, true);
  assert.deepEqual(loadModel(dir).config, model.config);
  assert.equal(loadModel(dir, { deterministic: false, precision: 'bf16' }).config.deterministic, false, 'overrides win');

  delete saved.precision;
  delete saved.deterministic;
  writeFileSync(join(dir, 'config.json'), JSON.stringify(saved));
  const old = loadModel(dir);
  assert.equal(old.config.precision, 'bf16');
  assert.equal(old.config.deterministic, false);
  const batch = randomTokens(2, 6, 300, 5);
  assert.equal(await old.forward(batch), await model.forward(batch), 'the same weights');
});

test('a capacity factor past numExperts routes as numExperts does, without allocating for it', async () => {
  const moe = { ...small, model: 'moe-mamba', pattern: 'ME', numExperts: 4, expertHidden: 16 } as const;
  const batch = randomTokens(2, 12, 300);
  const losses = [];
  for (const capacityFactor of [4, 2 ** 31]) {
    const model = createModel({ ...moe, capacityFactor });
    assert.equal(model.config.capacityFactor, capacityFactor, 'the config keeps what was asked');
    losses.push(await new Trainer(model, { batchSize: 2, seqLen: 12 }).step(batch));
  }
  assert.deepEqual(losses[1], { ...losses[0], tokensPerS: losses[1]!.tokensPerS, elapsedS: losses[1]!.elapsedS });
  assert.equal(losses[0]!.dropped.reduce((a, b) => a + b, 0), 0);
});

test("the last pass's aux loss, tokens per expert and drops are readable from the model", async () => {
  const moe = { ...small, model: 'moe-mamba', pattern: 'ME*2', numExperts: 4, expertHidden: 16, capacityFactor: 1.0 } as const;
  const model = createModel(moe);
  assert.equal(model.lastForward, undefined, 'no pass yet');
  const batch = randomTokens(2, 12, 300);
  const loss = await model.forward(batch);
  const seen = model.lastForward!;
  assert.equal(seen.loss, loss);
  assert.ok(seen.auxLoss > 0, 'switch routers add a load-balancing loss');
  assert.equal(seen.experts.length, 2, 'one entry per MoE layer');
  for (const [layer, counts] of seen.experts.entries()) {
    assert.equal(counts.length, 4);
    assert.equal(counts.reduce((a, b) => a + b, 0) + seen.dropped[layer]!, 2 * 12, 'every token is kept or dropped');
  }
  const trainer = new Trainer(model, { batchSize: 2, seqLen: 12 });
  const step = await trainer.step(batch);
  assert.deepEqual(model.lastForward, { loss: step.loss, auxLoss: step.auxLoss, experts: step.experts, dropped: step.dropped, routing: 'training' });
  const dense = createModel(small);
  await dense.lossAndGradients(batch);
  assert.deepEqual({ ...dense.lastForward, loss: 0 }, { loss: 0, auxLoss: 0, experts: [], dropped: [], routing: 'training' });
});

test('routing is explicit: Sinkhorn models route differently in training, and forward can say which', async () => {
  const batch = randomTokens(2, 12, 300);
  const sinkhorn = createModel({ ...preset('blackmamba', 'tiny').config, ...small, pattern: 'ME' });
  const trainingLoss = await sinkhorn.lossAndGradients(batch);
  assert.equal(sinkhorn.lastForward!.routing, 'training');
  const inferenceLoss = await sinkhorn.forward(batch);
  assert.equal(sinkhorn.lastForward!.routing, 'inference');
  assert.notEqual(inferenceLoss, trainingLoss, 'argmax and Sinkhorn routing differ on this batch');
  assert.equal(await sinkhorn.forward(batch, { routing: 'inference' }), inferenceLoss);
  assert.equal(await sinkhorn.forward(batch, { routing: 'training' }), trainingLoss);
  assert.equal(sinkhorn.lastForward!.routing, 'training');
  const switched = createModel({ ...preset('moe-mamba', 'tiny').config, ...small, pattern: 'ME' });
  assert.equal(await switched.forward(batch, { routing: 'training' }), await switched.forward(batch), 'switch routers route alike');
  await assert.rejects(sinkhorn.forward(batch, { routing: 'eval' as never }), { name: 'MambalabError', message: 'forward: routing must be "inference" or "training", got "eval"' });
});

test('a whole preset passed as a config says to pass its .config', () => {
  const whole = preset('mamba', 'tiny') as never;
  assert.throws(() => createModel(whole), {
    name: 'MambalabError',
    message: "config: got a preset (its description, config and training); a model takes the preset's config, e.g. createModel(preset('mamba', 'tiny').config)",
  });
});

test('dispose frees the model: later calls fail with a MambalabError saying so; twice is fine; not while a call runs', async () => {
  const model = createModel(small);
  const batch = randomTokens(2, 12, 300);
  const running = model.forward(batch);
  assert.throws(() => model.dispose(), (e: unknown) => e instanceof MambalabError && /model\.dispose\(\): model is busy/.test(e.message));
  assert.ok(Number.isFinite(await running), 'the running call finishes');
  model.dispose();
  model.dispose();
  const disposed = (e: unknown) => e instanceof MambalabError && /^model: disposed .*create or load the model again/.test(e.message);
  await assert.rejects(model.forward(batch), disposed);
  await assert.rejects(model.generate([1, 2, 3], { maxTokens: 2 }), disposed);
  assert.throws(() => model.getParameter('backbone.embedding.weight'), disposed);
  assert.throws(() => model.setParameter('backbone.norm_f.weight', new Array(model.config.dModel).fill(1)), disposed);
});
