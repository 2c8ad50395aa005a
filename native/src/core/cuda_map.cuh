// Elementwise maps for the activation ops (silu, gelu, swiglu): y[i] = f(x₀[i], x₁[i], …) with
// T storage (float or bf16) and fp32 math, one grid-stride loop. `f` is a functor whose
// operator() is __device__ and takes and returns floats. Included by .cu files only.
#pragma once
#include "cuda_check.h"
#include "cuda_math.cuh"

namespace ml::cuda {

template <typename T, typename F, typename... In>
__global__ void map_kernel(F f, T* __restrict__ y, int64_t n, const In* __restrict__... in) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = from_float<T>(f(to_float(in[i])...));
}

// Enqueues the map on `stream`; `op` names the caller in errors.
template <typename T, typename F, typename... In>
void map(const char* op, F f, T* y, int64_t n, cudaStream_t stream, const In*... in) {
  if (n <= 0) return;
  map_kernel<T, F, In...><<<blocks_for(n, 256), 256, 0, stream>>>(f, y, n, in...);
  ML_CUDA_CHECK_LAUNCH(op);
}

}  // namespace ml::cuda
