// Device helpers shared by the CUDA kernels: element conversion (fp32 / bf16 storage, fp32
// arithmetic), the activations of the CPU reference, and warp / block sums in a fixed order
// (so that results do not depend on scheduling).
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace ml::cuda {

using bf16 = __nv_bfloat16;

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(bf16 x) { return __bfloat162float(x); }

template <typename T>
__device__ __forceinline__ T from_float(float x);
template <>
__device__ __forceinline__ float from_float<float>(float x) { return x; }
template <>
__device__ __forceinline__ bf16 from_float<bf16>(float x) { return __float2bfloat16_rn(x); }

// The CPU reference's activations (ops/silu/silu.h, selective_scan's softplus), in fp32.
__device__ __forceinline__ float sigmoid32(float x) { return 1.f / (1.f + expf(-x)); }
__device__ __forceinline__ float silu32(float x) { return x * sigmoid32(x); }
__device__ __forceinline__ float silu_grad32(float x) {
  const float s = sigmoid32(x);
  return s * (1.f + x * (1.f - s));
}
__device__ __forceinline__ float softplus32(float x) { return x > 20.f ? x : log1pf(expf(x)); }
__device__ __forceinline__ float softplus_grad32(float x) { return x > 20.f ? 1.f : sigmoid32(x); }
// ops/gelu/gelu.h's exact (erf) GELU and its derivative.
__device__ __forceinline__ float gelu32(float x) { return 0.5f * x * (1.f + erff(x * 0.70710678118654752f)); }
__device__ __forceinline__ float gelu_grad32(float x) {
  return 0.5f * (1.f + erff(x * 0.70710678118654752f)) + x * expf(-0.5f * x * x) * 0.39894228040143268f;
}

// Faster forms for the fused kernels' per-element math (MUFU exp and reciprocal): relative
// error ~1e-6 for |x| ≲ 20, well inside the fp32 bound of the tests. exp_ftz flushes results
// below 2⁻¹²⁶ to zero instead of fixing them up (nothing here needs them).
__device__ __forceinline__ float exp2_approx(float x) {  // MUFU.EX2: relative error ~2⁻²²
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}
__device__ __forceinline__ float exp_ftz(float x) { return exp2_approx(x * 1.4426950408889634f); }
__device__ __forceinline__ float sigmoid_fast(float x) { return __fdividef(1.f, 1.f + exp_ftz(-x)); }
// SiLU and its derivative on the MUFU (five instructions, where the exact forms above take ~20
// and made the streaming kernels that use them issue-bound).
__device__ __forceinline__ float silu_fast(float x) { return x * sigmoid_fast(x); }
__device__ __forceinline__ float silu_grad_fast(float x) {
  const float s = sigmoid_fast(x);
  return s * fmaf(x, 1.f - s, 1.f);
}
// softplus(x) = log1p(eˣ) (x itself above 20, as the CPU reference), branch-free: eˣ by
// MUFU, then log1p by a 6-term series where eˣ < 1/16 (truncation below 1e-9 relative) and by
// MUFU lg2 above (relative error below 2e-6). Optionally σ(x) = eˣ / (1 + eˣ), its derivative.
__device__ __forceinline__ float softplus_fast(float x, float* sigmoid_out = nullptr) {
  const float y = exp_ftz(fminf(x, 20.f));
  const float series =
      y * fmaf(y, fmaf(y, fmaf(y, fmaf(y, fmaf(y, -1.f / 6.f, 0.2f), -0.25f), 1.f / 3.f), -0.5f), 1.f);
  const float u = 1.f + y;
  const float log_u = __log2f(u) * 0.6931471805599453f;
  if (sigmoid_out) *sigmoid_out = x > 20.f ? 1.f : __fdividef(y, u);
  return x > 20.f ? x : (y < 0.0625f ? series : log_u);
}

// Sum over the warp; every lane gets the same value (butterfly order is fixed).
template <typename V>
__device__ __forceinline__ V warp_sum(V v) {
#pragma unroll
  for (int m = 16; m > 0; m >>= 1) v += __shfl_xor_sync(0xffffffffu, v, m);
  return v;
}

template <typename V>
__device__ __forceinline__ V warp_max(V v) {
#pragma unroll
  for (int m = 16; m > 0; m >>= 1) v = max(v, __shfl_xor_sync(0xffffffffu, v, m));
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the
// result. `scratch` holds 32 values of shared memory; the call contains __syncthreads, so
// every thread of the block must make it.
template <typename V>
__device__ __forceinline__ V block_sum(V v, V* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // scratch may still be read by an earlier call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : V(0);
  return warp_sum(v);
}

template <typename V>
__device__ __forceinline__ V block_max(V v, V* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : scratch[0];
  return warp_max(v);
}

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

inline unsigned blocks_for(int64_t n, int threads, int64_t cap = 65535LL * 8) {
  const int64_t b = (n + threads - 1) / threads;
  return unsigned(b < 1 ? 1 : (b > cap ? cap : b));
}

}  // namespace ml::cuda
