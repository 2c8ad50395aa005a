import assert from 'node:assert/strict';
import { test } from 'node:test';

import { gpuShortName, peakDenseFlops } from '../../../kernel/src/cli/gpus.js';

test('peak dense FLOP/s by the CUDA device name, for bf16 and fp32', () => {
  const cases: [string, number, number][] = [
    ['NVIDIA H100 80GB HBM3', 989e12, 67e12],
    ['NVIDIA H100 SXM5 80GB', 989e12, 67e12],
    ['NVIDIA H100 PCIe', 756e12, 51e12],
    ['NVIDIA H200', 989e12, 67e12],
    ['NVIDIA A100-SXM4-80GB', 312e12, 19.5e12],
    ['NVIDIA A100 80GB PCIe', 312e12, 19.5e12],
  ];
  for (const [name, bf16, fp32] of cases) {
    assert.deepEqual(peakDenseFlops(name, 'bf16'), { flops: bf16 }, name);
    assert.deepEqual(peakDenseFlops(name, 'fp32'), { flops: fp32 }, name);
  }
});

test('a GPU not in the table has no peak, and the note says so', () => {
  for (const name of ['NVIDIA GeForce RTX 4090', 'NVIDIA H100 NVL', 'NVIDIA H200 NVL', '']) {
    const peak = peakDenseFlops(name, 'bf16');
    assert.equal(peak.flops, null, name);
    assert.match(peak.note ?? '', /no peak FLOP\/s known for '.*' \(known: H100 SXM\/PCIe, H200, A100\)/);
  }
});

test('short GPU names for bench/results file names', () => {
  assert.equal(gpuShortName('NVIDIA H100 80GB HBM3'), 'h100');
  assert.equal(gpuShortName('NVIDIA H200'), 'h200');
  assert.equal(gpuShortName('NVIDIA A100-SXM4-80GB'), 'a100');
  assert.equal(gpuShortName('NVIDIA L40S'), 'l40s');
  assert.equal(gpuShortName('NVIDIA GeForce RTX 4090'), 'nvidia-geforce-rtx-4090');
});
