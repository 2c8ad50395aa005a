// Data parallel: ranks that each train their rows of every batch and sum their gradients take
// the steps of one trainer on the whole batches; bad ranks are refused before anything runs.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { MambalabError } from '../../../kernel/src/errors.js';
import type { ModelConfig } from '../../../kernel/src/models/config.js';
import { checkRanks, ranksFromEnv, rowsOf, RANKS_ENV } from '../../../kernel/src/train/ranks.js';
import type { FitOptions } from '../../../kernel/src/train/trainer.js';
import { TINY_MOE, tinyData, tinyTrainer } from '../../support/tiny.js';

const rendezvous = (name: string) => join(tmpdir(), `mambalab-ranks-test-${process.pid}-${name}`);

test('rowsOf gives each rank its contiguous share of a batch\'s rows', () => {
  const batch = { tokens: Int32Array.from({ length: 4 * 3 }, (_, i) => i), batchSize: 4, seqLen: 2 };
  assert.deepEqual([...rowsOf(batch, { rank: 0, world: 2 }).tokens], [0, 1, 2, 3, 4, 5]);
  const second = rowsOf(batch, { rank: 1, world: 2 });
  assert.deepEqual([[...second.tokens], second.batchSize, second.seqLen], [[6, 7, 8, 9, 10, 11], 2, 2]);
  assert.throws(() => rowsOf(batch, { rank: 0, world: 3 }), /a batch of 4 rows does not split evenly over 3 ranks/);
});

test('checkRanks names what is wrong with a rank', () => {
  const ok = { rank: 1, world: 2, rendezvous: '/tmp/x', session: 3 };
  checkRanks(ok, 8, 2);
  for (const [bad, message] of [
    [{ ...ok, world: 0 }, /ranks.world: expected a positive integer, got 0/],
    [{ ...ok, rank: 2 }, /ranks.rank: expected an integer in \[0, 2\), got 2/],
    [{ ...ok, rendezvous: '' }, /ranks.rendezvous: expected a file path/],
    [{ ...ok, session: -1 }, /ranks.session/],
    [{ ...ok, timeoutS: 0 }, /ranks.timeoutS/],
    [{ ...ok, collective: 'mpi' as 'nccl' }, /ranks.collective: expected 'shared-memory' or 'nccl', got "mpi"/],
    [{ ...ok, shardOptimizer: 'yes' as unknown as boolean }, /ranks.shardOptimizer: expected true or false, got "yes"/],
    [{ ...ok, rank: 0, world: 1, shardOptimizer: true }, /ranks.shardOptimizer: sharding the optimizer state needs 2 or more ranks to share it, got world 1/],
  ] as const) {
    assert.throws(() => checkRanks(bad, 8, 2), (e: unknown) => e instanceof MambalabError && message.test(e.message));
  }
  assert.throws(() => checkRanks(ok, 6, 2), /a batch of 6 rows does not split into 2 ranks × 2 micro-batches/);
  assert.equal(ranksFromEnv({}), undefined);
  assert.deepEqual(ranksFromEnv({ [RANKS_ENV]: JSON.stringify(ok) }), ok);
  assert.throws(() => ranksFromEnv({ [RANKS_ENV]: '{oops' }), /MAMBALAB_RANKS: expected the JSON/);
});

test('two ranks in step (one process, two engines) take the steps of one trainer on the whole batches: float64 within 1e-12', async () => {
  const data = tinyData();
  const options = { batchSize: 8, gradAccumulation: 2 };
  const one = tinyTrainer({ dtype: 'float64' }, options);
  const expected = await one.trainer.fit(data, { steps: 3, evalBatches: 1 });
  const path = rendezvous('fit');
  const ranks = [0, 1].map((rank) => ({ rank, ...tinyTrainer({ dtype: 'float64' }, options) }));
  await Promise.all(ranks.map(({ rank, trainer }) => trainer.joinRanks({ rank, world: 2, rendezvous: path, session: 11, timeoutS: 30 })));
  const fits = await Promise.all(ranks.map(({ trainer }) => trainer.fit(data, { steps: 3, evalBatches: 1 })));
  for (const fit of fits) {
    fit.history.forEach((m, i) => {
      const w = expected.history[i]!;
      assert.deepEqual([m.step, m.tokens, m.lr], [w.step, w.tokens, w.lr], 'steps, tokens and the schedule are the whole batch\'s');
      assert.ok(Math.abs(m.loss - w.loss) <= 1e-12 * w.loss, `loss ${m.loss} vs ${w.loss}`);
      assert.ok(Math.abs(m.gradNorm - w.gradNorm) <= 1e-10 * w.gradNorm, `gradient norm ${m.gradNorm} vs ${w.gradNorm}`);
    });
  }
  for (const p of one.model.parameters()) {
    const want = one.model.getParameter(p.name), a = ranks[0]!.model.getParameter(p.name), b = ranks[1]!.model.getParameter(p.name);
    assert.deepEqual(a, b, `${p.name}: the replicas differ`);
    for (let i = 0; i < want.length; i++) assert.ok(Math.abs(a[i]! - want[i]!) <= 1e-12 * Math.max(1e-3, Math.abs(want[i]!)), `${p.name}[${i}]: ${a[i]} vs ${want[i]}`);
  }
  assert.equal(ranks[0]!.trainer.ranks?.world, 2);
  await assert.rejects(ranks[0]!.trainer.joinRanks({ rank: 0, world: 2, rendezvous: path, session: 12 }), /already rank 0 of 2/);
  for (const { model } of [...ranks, one]) model.dispose();
  assert.ok(!existsSync(path), 'rank 0 removes the rendezvous file when its model goes');
});

test('a rank whose partner never comes fails within its timeout, saying what it waited for', async () => {
  const { model, trainer } = tinyTrainer({}, { batchSize: 4 });
  await assert.rejects(trainer.joinRanks({ rank: 0, world: 2, rendezvous: rendezvous('alone'), session: 1, timeoutS: 0.5 }), (e: unknown) => {
    assert.ok(e instanceof MambalabError, String(e));
    assert.match(e.message, /data parallel: rank 0 of 2 waited 0\.5 s at the start for the other ranks/);
    return true;
  });
  model.dispose();
});

test('NCCL ranks sum on GPUs: a CPU model refuses them before anything is joined', async () => {
  const { model, trainer } = tinyTrainer({}, { batchSize: 4 });
  await assert.rejects(trainer.joinRanks({ rank: 0, world: 2, rendezvous: rendezvous('nccl'), session: 1, collective: 'nccl' }), (e: unknown) => {
    assert.ok(e instanceof MambalabError, String(e));
    assert.match(e.message, /joinRanks: collective 'nccl' sums on GPUs, and this model is on the cpu \(create it with device 'cuda'\)/);
    return true;
  });
  assert.equal(trainer.ranks, undefined);
  assert.ok(!existsSync(rendezvous('nccl')), 'no rendezvous was made');
  model.dispose();
});

/** `world` ranks in this process (one engine each), optimizer sharded or not, fitting alike; rank 0's fit gets `first`. */
async function fitRanks(model: Partial<ModelConfig>, world: number, shardOptimizer: boolean, options: FitOptions, first: Partial<FitOptions> = {}) {
  const ranks = Array.from({ length: world }, (_, rank) => ({ rank, ...tinyTrainer(model, { batchSize: 6, gradClip: 0.05 }) }));
  const path = rendezvous(`zero1-${world}-${shardOptimizer}`);
  await Promise.all(ranks.map(({ rank, trainer }) => trainer.joinRanks({ rank, world, rendezvous: path, session: 21, timeoutS: 30, shardOptimizer })));
  const fits = await Promise.all(ranks.map(({ rank, trainer }) => trainer.fit(tinyData(), { ...options, ...(rank === 0 ? first : {}) })));
  return ranks.map(({ model, trainer }, rank) => ({ model, trainer, fit: fits[rank]! }));
}

test('ranks with a sharded optimizer take bit for bit the steps of the same ranks unsharded (Mamba and MoE, float32 and float64, 2 and 3 ranks, clipping on), each holding its share of the moments', async () => {
  for (const [name, model] of [['mamba', {}], ['moe', TINY_MOE]] as const)
    for (const dtype of ['float32', 'float64'] as const)
      for (const world of [2, 3]) {
        const what = `${name} ${dtype} ${world} ranks`;
        const plain = await fitRanks({ ...model, dtype }, world, false, { steps: 3, evalBatches: 1 });
        const sharded = await fitRanks({ ...model, dtype }, world, true, { steps: 3, evalBatches: 1 });
        for (let r = 0; r < world; r++) {
          const [a, b] = [plain[r]!, sharded[r]!];
          assert.deepEqual(b.fit.history.map((m) => [m.loss, m.gradNorm, m.auxLoss]), a.fit.history.map((m) => [m.loss, m.gradNorm, m.auxLoss]), `${what}: rank ${r}'s steps`);
          assert.ok(a.fit.history.every((m) => m.gradNorm > 0.05), `${what}: clipping was off`);
          for (const p of a.model.parameters()) assert.deepEqual(b.model.getParameter(p.name), a.model.getParameter(p.name), `${what}: rank ${r}'s ${p.name}`);
          const ratio = b.trainer.optimizerStateBytes / a.trainer.optimizerStateBytes;
          assert.ok(Math.abs(ratio - 1 / world) < 0.01, `${what}: rank ${r} holds ${b.trainer.optimizerStateBytes} bytes of moments sharded, ${a.trainer.optimizerStateBytes} unsharded`);
        }
        for (const { model } of [...plain, ...sharded]) model.dispose();
      }
});

test('ranks with a sharded optimizer stop when rank 0 stops, though only rank 0 was told', async () => {
  const abort = new AbortController();
  const ranks = await fitRanks({}, 2, true, { steps: 5, evalBatches: 1 }, { signal: abort.signal, onStep: (m) => m.step === 2 && abort.abort() });
  assert.deepEqual(ranks.map(({ fit }) => [fit.steps, fit.stopped]), [[2, true], [2, true]]);
  assert.deepEqual(ranks[1]!.trainer.stepCount, 2);
  for (const { model } of ranks) model.dispose();
});
