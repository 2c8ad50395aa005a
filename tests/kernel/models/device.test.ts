import assert from 'node:assert/strict';
import { test } from 'node:test';

import { chooseDevice } from '../../../kernel/src/models/device.js';
import type { NativeGpuInfo } from '../../../kernel/src/native.js';

// What the engine reports with and without a GPU (the status lines are the engine's).
const noGpu: NativeGpuInfo = { builtWithCuda: true, deviceCount: 0, name: '', computeCapability: 0, status: 'no GPU: CUDA driver version is insufficient for CUDA runtime version' };
const h100: NativeGpuInfo = { builtWithCuda: true, deviceCount: 1, name: 'NVIDIA H100 80GB HBM3', computeCapability: 90, status: '1 GPU: NVIDIA H100 80GB HBM3' };

test('auto takes the GPU when the engine sees one, and says which', () => {
  assert.deepEqual(chooseDevice({ device: 'auto', dtype: 'float32' }, h100), { device: 'cuda', note: 'auto: CUDA (NVIDIA H100 80GB HBM3)' });
});

test('auto falls back to the CPU with the engine\'s reason', () => {
  assert.deepEqual(chooseDevice({ device: 'auto', dtype: 'float32' }, noGpu), {
    device: 'cpu',
    note: 'auto: CPU (no GPU: CUDA driver version is insufficient for CUDA runtime version)',
  });
});

test('auto keeps float64 models on the CPU even with a GPU', () => {
  assert.deepEqual(chooseDevice({ device: 'auto', dtype: 'float64' }, h100), { device: 'cpu', note: 'auto: CPU (float64 runs on the CPU only)' });
});

test('cpu and cuda are taken as asked when possible', () => {
  assert.deepEqual(chooseDevice({ device: 'cpu', dtype: 'float32' }, h100), { device: 'cpu', note: 'cpu' });
  assert.deepEqual(chooseDevice({ device: 'cuda', dtype: 'float32' }, h100), { device: 'cuda', note: 'cuda (NVIDIA H100 80GB HBM3)' });
});

test('cuda without a GPU is a clear error that quotes the engine and offers the alternatives', () => {
  assert.throws(
    () => chooseDevice({ device: 'cuda', dtype: 'float32' }, noGpu),
    { name: 'MambalabError', message: 'config.device: "cuda" was asked for, but no GPU: CUDA driver version is insufficient for CUDA runtime version; use "cpu" or "auto"' },
  );
});
