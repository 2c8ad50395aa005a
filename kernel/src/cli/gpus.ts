// GPUs by the name CUDA gives them: their peak dense FLOP/s (the denominator of MFU) and the
// short name bench results are filed under.
import type { Precision } from '../native.js';

interface GpuPeak {
  /** Matches the CUDA device name ("NVIDIA H100 80GB HBM3", "NVIDIA H100 PCIe", ...). */
  name: RegExp;
  /** Dense (no sparsity) tensor-core bf16 and plain fp32 FLOP/s, from the vendor's data sheet. */
  bf16: number;
  fp32: number;
}

// Only what the data sheets say: variants with other clocks (H100 NVL, H200 NVL) are left
// unknown rather than guessed.
const PEAKS: GpuPeak[] = [
  { name: /H100.*(SXM|HBM3)/i, bf16: 989e12, fp32: 67e12 },
  { name: /H100.*PCIe/i, bf16: 756e12, fp32: 51e12 },
  { name: /H200(?!.*NVL)/i, bf16: 989e12, fp32: 67e12 },
  { name: /A100/i, bf16: 312e12, fp32: 19.5e12 },
];

export interface PeakFlops {
  /** null when the GPU is not in the table. */
  flops: number | null;
  /** Why there is no number. */
  note?: string;
}

export function peakDenseFlops(gpuName: string, precision: Precision): PeakFlops {
  const gpu = PEAKS.find((p) => p.name.test(gpuName));
  if (!gpu) return { flops: null, note: `no peak FLOP/s known for '${gpuName}' (known: H100 SXM/PCIe, H200, A100)` };
  return { flops: gpu[precision] };
}

/** "NVIDIA H100 80GB HBM3" → "h100"; a name without a model number → its words joined by '-'. */
export function gpuShortName(gpuName: string): string {
  const model = /\b[A-Z]{1,2}\d{2,4}[A-Z]?\b/.exec(gpuName.replace(/^NVIDIA\s+/i, ''));
  if (model) return model[0].toLowerCase();
  return gpuName.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
}
