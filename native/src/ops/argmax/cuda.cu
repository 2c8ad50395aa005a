// One block per row: each thread keeps the best (value, index) of its strided elements, then
// warps and the block reduce pairs, a larger value or an equal one at a lower index winning.
#include "../../core/cuda_check.h"
#include "../../core/error.h"
#include "argmax.h"

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

template <typename T>
__global__ void argmax_kernel(const T* __restrict__ x, int64_t n, int64_t ld, int32_t* __restrict__ out) {
  __shared__ Best warps[kThreads / 32];
  const T* row = x + int64_t(blockIdx.x) * ld;
  Best best{-INFINITY, n};
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) best = better(best, {float(row[i]), i});
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
  argmax_kernel<T><<<unsigned(rows), kThreads, 0, stream>>>(x, n, ld, out);
  ML_CUDA_CHECK_LAUNCH("argmax");
}

template void argmax<float>(const float*, int64_t, int64_t, int64_t, int32_t*, cudaStream_t);

}  // namespace ml::cuda
