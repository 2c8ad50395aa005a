// One block per row: each thread keeps the best (value, index) of its strided elements, then
// warps and the block reduce pairs, a larger value or an equal one at a lower index winning.
#include "../../core/chained_launch.cuh"
#include "../../core/cuda_check.h"
#include "../../core/error.h"
#include "argmax.h"

#include <cstdint>
#include <type_traits>

namespace ml::cuda {
namespace {

constexpr int kThreads = 1024;

struct Best {
  float value;
  int64_t index;
};

__device__ __forceinline__ Best better(Best a, Best b) {
  return (b.value > a.value || (b.value == a.value && b.index < a.index)) ? b : a;
}

__device__ __forceinline__ Best warp_best(Best v) {
#pragma unroll
  for (int m = 16; m > 0; m >>= 1)
    v = better(v, {__shfl_xor_sync(0xffffffffu, v.value, m), __shfl_xor_sync(0xffffffffu, v.index, m)});
  return v;
}

// A row read four values a load, kUnroll loads in flight per thread: a vocabulary's row read
// one value a round trip cost 18 µs on an H200, more than the decode step's largest product.
constexpr int kUnroll = 4;

template <typename T>
__global__ void argmax_kernel(const T* __restrict__ x, int64_t n, int64_t ld, int32_t* __restrict__ out) {
  __shared__ Best warps[kThreads / 32];
  chain_wait();
  const T* row = x + int64_t(blockIdx.x) * ld;
  Best best{-INFINITY, n};
  int64_t scalar_from = 0;
  if constexpr (std::is_same_v<T, float>) {
    if ((reinterpret_cast<uintptr_t>(row) & 15) == 0) {
      const float4* quads = reinterpret_cast<const float4*>(row);
      const int64_t count = n / 4;
      for (int64_t q0 = threadIdx.x; q0 < count; q0 += int64_t(kUnroll) * blockDim.x) {
        float4 v[kUnroll];
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
          const int64_t q = q0 + int64_t(u) * blockDim.x;
          v[u] = q < count ? quads[q] : make_float4(-INFINITY, -INFINITY, -INFINITY, -INFINITY);
        }
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
          const int64_t q = q0 + int64_t(u) * blockDim.x;
          if (q >= count) break;
          const int64_t i = 4 * q;
          best = better(best, {v[u].x, i});
          best = better(best, {v[u].y, i + 1});
          best = better(best, {v[u].z, i + 2});
          best = better(best, {v[u].w, i + 3});
        }
      }
      scalar_from = 4 * count;
    }
  }
  for (int64_t i = scalar_from + threadIdx.x; i < n; i += blockDim.x) best = better(best, {float(row[i]), i});
  best = warp_best(best);
  if ((threadIdx.x & 31) == 0) warps[threadIdx.x >> 5] = best;
  __syncthreads();
  if (threadIdx.x >= 32) return;
  best = threadIdx.x < blockDim.x / 32 ? warps[threadIdx.x] : Best{-INFINITY, n};
  best = warp_best(best);
  if (threadIdx.x == 0) out[blockIdx.x] = int32_t(best.index < n ? best.index : 0);
}

}  // namespace

template <typename T>
void argmax(const T* x, int64_t rows, int64_t n, int64_t ld, int32_t* out, cudaStream_t stream) {
  if (rows <= 0) return;
  ML_CHECK(rows <= 0x7fffffff && n > 0 && n <= 0x7fffffff, "argmax (cuda): ", rows, " rows of ", n,
           " values are outside one launch");
  launch_chained("argmax", argmax_kernel<T>, dim3(unsigned(rows)), dim3(kThreads), 0, stream, x, n, ld, out);
}

template void argmax<float>(const float*, int64_t, int64_t, int64_t, int32_t*, cudaStream_t);

}  // namespace ml::cuda
