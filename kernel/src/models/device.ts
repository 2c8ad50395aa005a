// Which device a model runs on: the config's "cpu", "cuda" or "auto", against the GPUs the
// engine sees. Pure, so that both answers can be tested on a machine without a GPU.
import { MambalabError } from '../errors.js';
import type { EngineDevice, NativeGpuInfo } from '../native.js';
import type { ModelConfig } from './config.js';

export interface DeviceChoice {
  device: EngineDevice;
  /** Why, for people: "auto: CUDA (NVIDIA H100 80GB HBM3)", "auto: CPU (no GPU: ...)". */
  note: string;
}

export function chooseDevice(config: Pick<ModelConfig, 'device' | 'dtype'>, gpu: NativeGpuInfo): DeviceChoice {
  const hasGpu = gpu.deviceCount > 0;
  if (config.device === 'cpu') return { device: 'cpu', note: 'cpu' };
  if (config.device === 'cuda') {
    if (!hasGpu) throw new MambalabError(`config.device: "cuda" was asked for, but ${gpu.status}; use "cpu" or "auto"`);
    return { device: 'cuda', note: `cuda (${gpu.name})` };
  }
  // float64 is for gradient checks, which the CPU runs; auto keeps such a model there.
  if (config.dtype === 'float64') return { device: 'cpu', note: 'auto: CPU (float64 runs on the CPU only)' };
  return hasGpu ? { device: 'cuda', note: `auto: CUDA (${gpu.name})` } : { device: 'cpu', note: `auto: CPU (${gpu.status})` };
}
