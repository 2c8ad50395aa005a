// The batch sampler's cost beside a training step, for `mambalab bench tokenize`: sampling
// must cost far less than a step, or the data pipeline, not the engine, sets the training speed.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { prepare } from '../corpus/prepare.js';
import { openDataset } from '../data/dataset.js';
import { createModel } from '../models/model.js';
import { preset } from '../models/presets.js';
import { Trainer } from '../train/trainer.js';

/** Microseconds per batch from the window sampler, beside the tiny preset's CPU training step. */
export async function benchSampler(corpus: string, log: (line: string) => void) {
  const dir = mkdtempSync(join(tmpdir(), 'mambalab-bench-'));
  try {
    await prepare({ inputs: [corpus], out: join(dir, 'data'), tokenizer: 'gpt2' });
    const data = openDataset(join(dir, 'data'));
    const perBatch = (batchSize: number, seqLen: number) => {
      const sampler = data.sampler('train', { batchSize, seqLen, seed: 1 });
      for (let i = 0; i < 50; i++) sampler.next();
      const n = 2000;
      const start = performance.now();
      for (let i = 0; i < n; i++) sampler.next();
      return ((performance.now() - start) * 1000) / n;
    };
    const tiny = preset('mamba', 'tiny');
    const { batchSize, seqLen } = tiny.training;
    const trainer = new Trainer(createModel({ ...tiny.config, seed: 1 }), { ...tiny.training, seed: 1 });
    const sampler = data.sampler('train', { batchSize, seqLen, seed: 2 });
    const steps: number[] = [];
    for (let i = 0; i < 12; i++) {
      const batch = sampler.next();
      const start = performance.now();
      await trainer.step(batch);
      if (i >= 2) steps.push(performance.now() - start);
    }
    steps.sort((a, b) => a - b);
    const stepMs = steps[steps.length >> 1]!;
    const samplerUs = perBatch(batchSize, seqLen);
    const result = {
      preset: 'mamba/tiny on the CPU',
      batchSize,
      seqLen,
      samplerUsPerBatch: Number(samplerUs.toFixed(2)),
      trainStepMsMedian: Number(stepMs.toFixed(2)),
      samplerShareOfStep: Number((samplerUs / 1000 / stepMs).toExponential(2)),
      paperScale: { batchSize: 256, seqLen: 256, samplerUsPerBatch: Number(perBatch(256, 256).toFixed(2)) },
      target: 'below 1% of a step',
    };
    log(`sampler ${result.samplerUsPerBatch} µs per (${batchSize}, ${seqLen + 1}) batch; tiny CPU step ${result.trainStepMsMedian} ms: ${(result.samplerShareOfStep * 100).toFixed(4)}% of a step`);
    return result;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
