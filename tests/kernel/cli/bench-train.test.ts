import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { cudaReport, GPU_BENCH_SHAPES, GPU_SCALING_LADDER, GPU_VOCAB_PAD_MULTIPLE, parseLadder } from '../../../kernel/src/cli/bench-train.js';
import { MODEL_FAMILIES, paddedVocabSize, resolveConfig } from '../../../kernel/src/models/config.js';
import { trainingFlopsPerToken } from '../../../kernel/src/models/flops.js';
import { countParameters } from '../../../kernel/src/models/params.js';
import { preset } from '../../../kernel/src/models/presets.js';
import { native } from '../../../kernel/src/native.js';
import { repoRoot, scratchDir } from '../../helpers.js';

const cli = join(repoRoot, 'kernel', 'src', 'cli', 'main.ts');
const gpu = native().info().gpu;
const noGpuHere = gpu.deviceCount > 0 ? `this machine has a GPU (${gpu.name})` : false;

function mambalab(args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', cli, ...args], { encoding: 'utf8', cwd: repoRoot, timeout: 5 * 60_000 });
}

test('bench train on the CPU: one JSON line with the throughput, memory and a null MFU; --out DIR files it by date, machine and name', { skip: noGpuHere }, () => {
  const dir = scratchDir();
  const run = mambalab(['bench', 'train', '--device', 'auto', '--precision', 'fp32', '--deterministic', '--batch-size', '2', '--seq-len', '16',
    '--warmup', '1', '--steps', '2', '--json', '--out', dir]);
  assert.equal(run.status, 0, run.stderr);
  const lines = run.stdout.trim().split('\n');
  assert.equal(lines.length, 1);
  const r = JSON.parse(lines[0]!);
  assert.match(run.stderr, /bench train: mamba\/tiny on auto: CPU \(no GPU/, 'auto on a machine without a GPU keeps the CPU defaults');
  assert.equal(r.name, 'train-mamba-tiny');
  assert.match(r.gpu, /^none \(CPU: .+, \d+ threads\)$/);
  assert.match(r.date, /^\d{4}-\d{2}-\d{2}$/);
  assert.deepEqual([r.device, r.precision, r.deterministic, r.batch_size, r.seq_len, r.steps], ['cpu', 'fp32', true, 2, 16, 2]);
  assert.equal(r.params_non_embedding, 65472);
  assert.equal(r.params_active, 65472);
  assert.equal(r.vocab_padded, 50264, 'the preset\'s padding (to a multiple of 8) on the CPU');
  assert.ok(r.tokens_per_s > 0 && r.step_ms > 0 && r.peak_mem_gib > 0, JSON.stringify(r));
  assert.ok(Math.abs(r.tokens_per_s * r.step_ms - 2 * 16 * 1000) < 1e-6 * r.tokens_per_s * r.step_ms, 'tokens/s and step time agree');
  assert.ok(Math.abs(r.achieved_tflops - (r.tokens_per_s * r.flops_per_token) / 1e12) < 1e-9);
  assert.equal(r.peak_mem_source, 'process max RSS');
  assert.deepEqual([r.device_used_gib, r.peak_flops, r.mfu], [null, null, null]);
  assert.equal(r.mfu_note, 'utilisation is reported on GPUs only');
  assert.deepEqual(readdirSync(dir), [`${r.date}-cpu-train-mamba-tiny.json`]);
  assert.deepEqual(JSON.parse(readFileSync(join(dir, readdirSync(dir)[0]!), 'utf8')), r);
});

test('bench train --model jamba on the CPU counts attention in the FLOPs per token at the timed length', { skip: noGpuHere }, () => {
  const run = mambalab(['bench', 'train', '--model', 'jamba', '--batch-size', '1', '--seq-len', '8', '--warmup', '0', '--steps', '1', '--json']);
  assert.equal(run.status, 0, run.stderr);
  const r = JSON.parse(run.stdout);
  const config = preset('jamba', 'tiny').config;
  assert.equal(r.name, 'train-jamba-tiny');
  assert.equal(r.flops_per_token, trainingFlopsPerToken(config, 8));
  assert.equal(r.params_active, countParameters(config).active);
});

test('bench train --scaling on the CPU: one JSON line per rung of the ladder, the same model, tokens per step as given', { skip: noGpuHere }, () => {
  const run = mambalab(['bench', 'train', '--scaling', '--ladder', '4x8,1x32', '--warmup', '0', '--steps', '1', '--json']);
  assert.equal(run.status, 0, run.stderr);
  const rows = run.stdout.trim().split('\n').map((line) => JSON.parse(line));
  assert.deepEqual(rows.map((r) => [r.name, r.batch_size, r.seq_len]), [['train-scaling-mamba-tiny', 4, 8], ['train-scaling-mamba-tiny', 1, 32]]);
  for (const r of rows) assert.ok(r.tokens_per_s > 0 && Math.abs(r.tokens_per_s * r.step_ms - 32 * 1000) < 1e-6 * r.tokens_per_s * r.step_ms, JSON.stringify(r));
  assert.equal(rows[0].params_active, rows[1].params_active);
  // Without --ladder the CPU's own small ladder.
  const small = mambalab(['bench', 'train', '--scaling', '--warmup', '0', '--steps', '1', '--json']);
  assert.equal(small.status, 0, small.stderr);
  assert.deepEqual(small.stdout.trim().split('\n').map((line) => { const r = JSON.parse(line); return `${r.batch_size}x${r.seq_len}`; }), ['8x32', '2x128', '1x256']);
});

test('the GPU scaling ladder holds 65,536 tokens per step as sequences grow, then one 131,072-token sequence; bad ladders are refused', () => {
  const ladder = parseLadder(GPU_SCALING_LADDER);
  assert.deepEqual(ladder.map((r) => r.batchSize * r.seqLen), [65536, 65536, 65536, 65536, 131072]);
  assert.deepEqual(ladder.map((r) => r.seqLen), [1024, 4096, 16384, 65536, 131072]);
  for (const bad of ['64x', '0x1024', '64*1024', '']) assert.throws(() => parseLadder(bad), /--ladder: expected batch×length pairs/);
  const r = mambalab(['bench', 'train', '--ladder', '2x8', '--json']);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /--ladder: only with --scaling/);
});

test('bench train --device cuda without a GPU, and bad values, are one-line errors with exit code 2', () => {
  const cases: [string[], RegExp][] = [
    [['--precision', 'fp16'], /^mambalab: --precision: expected bf16 or fp32, got 'fp16'\n$/],
    [['--device', 'gpu'], /^mambalab: --device: expected cpu, cuda or auto, got 'gpu'\n$/],
    [['--model', 'gpt'], /^mambalab: --model gpt: unknown model/],
  ];
  if (!noGpuHere) cases.push([['--device', 'cuda'], /^mambalab: config\.device: "cuda" was asked for, but no GPU.*; use "cpu" or "auto"\n$/]);
  for (const [args, message] of cases) {
    const r = mambalab(['bench', 'train', '--json', ...args]);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message, args.join(' '));
    assert.equal(r.stdout, '');
  }
});

test('on CUDA, bench train defaults to the issues\' benchmark configs, one for every model family', () => {
  assert.deepEqual(Object.keys(GPU_BENCH_SHAPES).sort(), [...MODEL_FAMILIES].sort());
  assert.deepEqual(GPU_BENCH_SHAPES.mamba, { size: 'v1', batchSize: 64, seqLen: 1024 });
  assert.deepEqual(GPU_BENCH_SHAPES['moe-mamba'], { size: 'v1', batchSize: 64, seqLen: 1024 });
  assert.deepEqual(GPU_BENCH_SHAPES.blackmamba, { size: '340m-1.5b', batchSize: 8, seqLen: 2048 });
  assert.deepEqual(GPU_BENCH_SHAPES.transformer, { size: 'v1', batchSize: 64, seqLen: 1024 });
  assert.deepEqual(GPU_BENCH_SHAPES['transformer-moe'], { size: 'v1', batchSize: 64, seqLen: 1024 });
  assert.deepEqual(GPU_BENCH_SHAPES.jamba, { size: '410m-1.6b', batchSize: 8, seqLen: 2048 });
  for (const [model, shape] of Object.entries(GPU_BENCH_SHAPES)) {
    const { maxPositions } = resolveConfig(preset(model, shape.size).config);
    assert.ok(maxPositions === 0 || shape.seqLen <= maxPositions, `${model}/${shape.size}: ${shape.seqLen} tokens fit its ${maxPositions} learned positions`);
  }
  assert.equal(preset('mamba', 'v1').config.dModel, 512);
  assert.equal(paddedVocabSize(resolveConfig({ ...preset('mamba', 'v1').config, padVocabMultiple: GPU_VOCAB_PAD_MULTIPLE })), 50304);
  assert.equal(preset('moe-mamba', 'v1').config.numExperts, 32);
});

test('on CUDA: peak memory from the engine allocator, device use from the driver, MFU against the precision\'s peak', () => {
  const GiB = 2 ** 30;
  const memory = { inUse: 10 * GiB, peakInUse: 30 * GiB, cached: 5 * GiB, cudaMallocs: 40, deviceTotal: 80 * GiB, deviceFree: 44 * GiB };
  assert.deepEqual(cudaReport('NVIDIA H100 80GB HBM3', memory, 'bf16', 400e12), {
    gpu: 'NVIDIA H100 80GB HBM3',
    peak_mem_gib: 30,
    peak_mem_source: 'engine allocator',
    device_used_gib: 36,
    peak_flops: 989e12,
    mfu: 400e12 / 989e12,
  });
  assert.equal(cudaReport('NVIDIA H100 80GB HBM3', memory, 'fp32', 33.5e12).mfu, 0.5);
  const unknown = cudaReport('NVIDIA GeForce RTX 4090', memory, 'bf16', 100e12);
  assert.deepEqual([unknown.peak_flops, unknown.mfu], [null, null]);
  assert.match(unknown.mfu_note!, /no peak FLOP\/s known for 'NVIDIA GeForce RTX 4090'/);
});
