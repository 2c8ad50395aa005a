// GPU LM parity, our half: for small but real models of every family, computes the loss and
// every gradient of one fixed batch on the engine, and saves what the PyTorch reference
// needs to do the same (bench/reference/gpu_parity.py compares):
//   <work>/<case>-<precision>/config.json, model.safetensors   (model.save)
//   <work>/<case>-<precision>/batch.json                        {"tokens": rows of seqLen + 1}
//   <work>/<case>-<precision>/ours.safetensors                  every gradient; metadata: the
//                                                               case, losses and expert counts
// Bundled by tests/gpu/pack.sh (esbuild reads the TypeScript sources), run on the GPU host:
//   node .gpu-carry/cli/dist/lm-parity.mjs --work DIR [--device cuda|cpu] [--precision fp32,bf16]
// On the CPU there is one precision (the engine's fp32), so --precision is ignored there.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { createModel } from '../../kernel/src/models/model.ts';
import { writeSafetensors } from '../../kernel/src/models/safetensors.ts';
import { randomTokens } from '../helpers.ts';

const BATCH = 3;
// Odd and longer than the conv window and any kernel's tile: edges get exercised.
const SEQ_LEN = 37;
const VOCAB = 50257; // GPT-2's, padded to 50304 by the engine as in the paper presets

// `drops`: the capacity is small enough that tokens are dropped (the Python side checks it).
const CASES = [
  { name: 'mamba', config: { model: 'mamba', dModel: 128, pattern: 'M*4' } },
  { name: 'mamba-mlp', config: { model: 'mamba-mlp', dModel: 128, pattern: 'MF*2', dFF: 512 } },
  {
    name: 'moe-mamba',
    config: { model: 'moe-mamba', dModel: 128, pattern: 'ME*2', numExperts: 8, expertHidden: 256, router: 'switch', expertKind: 'gelu', capacityFactor: 1.0, auxLossWeight: 0.01 },
    drops: true,
  },
  {
    name: 'blackmamba',
    config: { model: 'blackmamba', dModel: 128, pattern: 'ME*2', numExperts: 8, expertHidden: 256, router: 'sinkhorn', expertKind: 'swiglu', routerBias: true, capacityFactor: 'dropless', auxLossWeight: 0 },
  },
  {
    name: 'parallel-moe-mamba',
    config: { model: 'parallel-moe-mamba', dModel: 128, pattern: '(M|E)*2', numExperts: 4, topK: 2, expertHidden: 256, router: 'switch', expertKind: 'gelu', capacityFactor: 1.25, auxLossWeight: 0.01 },
  },
  // head_dim 64 (bf16: the tensor-core kernels), learned positions.
  { name: 'transformer', config: { model: 'transformer', dModel: 128, pattern: 'AF*2', nHeads: 2, dFF: 512, maxPositions: 64 } },
  {
    name: 'transformer-moe',
    config: { model: 'transformer-moe', dModel: 128, pattern: 'AE*2', nHeads: 2, maxPositions: 64, numExperts: 8, expertHidden: 256, router: 'switch', expertKind: 'gelu', capacityFactor: 1.0, auxLossWeight: 0.01 },
  },
  // Grouped-query heads of 32 (the CUDA-core kernels) with RoPE, between Mamba layers.
  {
    name: 'jamba',
    config: { model: 'jamba', dModel: 128, pattern: 'MFAE', nHeads: 4, nKvHeads: 2, rope: true, dFF: 256, mlpKind: 'swiglu', numExperts: 4, topK: 2, expertHidden: 256, expertKind: 'swiglu', router: 'switch', capacityFactor: 'dropless', auxLossWeight: 0.001 },
  },
  // Attention's edges: one query (L = 1) of one row with one KV head (multi-query); and
  // grouped-query heads of 64 with RoPE over more than three 64-row tiles, the last one partial.
  { name: 'attention-mqa-l1', batch: 1, seqLen: 1, config: { model: 'transformer', dModel: 128, pattern: 'AF', nHeads: 4, nKvHeads: 1, rope: true, dFF: 256 } },
  { name: 'attention-gqa-rope-l203', batch: 1, seqLen: 203, config: { model: 'transformer', dModel: 256, pattern: 'AF', nHeads: 4, nKvHeads: 2, rope: true, dFF: 512 } },
];

const { values: args } = parseArgs({
  options: {
    work: { type: 'string' },
    device: { type: 'string', default: 'cuda' },
    precision: { type: 'string', default: 'fp32,bf16' },
  },
});
if (!args.work) throw new Error('lm-parity: --work DIR is required');
const precisions = args.device === 'cuda' ? args.precision.split(',') : ['fp32'];

for (const { name, config, drops = false, batch = BATCH, seqLen = SEQ_LEN } of CASES) {
  for (const precision of precisions) {
    const dir = join(args.work, `${name}-${precision}`);
    mkdirSync(dir, { recursive: true });
    // precision and deterministic are CUDA options; deterministic makes reruns comparable.
    const device = args.device === 'cuda' ? { device: 'cuda', precision, deterministic: true } : { device: 'cpu' };
    const model = createModel({ vocabSize: VOCAB, seed: 7, ...config, ...device });
    const tokens = randomTokens(batch, seqLen, VOCAB, 3);
    const started = performance.now();
    const metrics = await model.engine.lossAndGradients(new Int32Array(tokens.flat()), batch, seqLen + 1);
    const ms = performance.now() - started;
    model.save(dir);
    writeFileSync(join(dir, 'batch.json'), JSON.stringify({ tokens }));
    const gradients = model.parameters().map((p) => ({ name: p.name, shape: p.fileShape, data: model.gradient(p.name) }));
    writeSafetensors(join(dir, 'ours.safetensors'), gradients, {
      case: name,
      device: args.device,
      precision,
      drops: String(drops),
      loss: String(metrics.loss),
      aux_loss: String(metrics.auxLoss),
      experts: JSON.stringify(metrics.experts.map((l) => l.counts)),
      dropped: JSON.stringify(metrics.experts.map((l) => l.dropped)),
    });
    console.error(`lm-parity: ${name} ${precision} on ${args.device}: loss ${metrics.loss.toFixed(6)} (${ms.toFixed(0)} ms) -> ${dir}`);
  }
}
