// One thread per (sequence, channel): it reads its window, sums in conv1d's order (bias, then
// the oldest input first) and shifts the window by one.
#include "../../core/chained_launch.cuh"
#include "../../core/cuda_check.h"
#include "../../core/cuda_math.cuh"
#include "../../core/error.h"
#include "conv1d_step.h"

namespace ml::cuda {
namespace {

template <int W, typename T>
__global__ void conv1d_step_kernel(Conv1dStepDims d, T* __restrict__ window, const T* __restrict__ x,
                                   const float* __restrict__ weight, const float* __restrict__ bias,
                                   T* __restrict__ y, bool apply_silu) {
  chain_wait();
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= d.batch * d.dim) return;
  const int64_t b = i / d.dim, c = i % d.dim;
  T* past = window + b * (W - 1) * d.dim + c;
  float hist[W];
#pragma unroll
  for (int k = 0; k < W - 1; ++k) hist[k] = to_float(past[k * d.dim]);
  hist[W - 1] = to_float(x[i]);
  float acc = bias ? bias[c] : 0.f;
#pragma unroll
  for (int k = 0; k < W; ++k) acc += weight[c * W + k] * hist[k];
#pragma unroll
  for (int k = 0; k < W - 1; ++k) past[k * d.dim] = from_float<T>(hist[k + 1]);  // exact: hist came from T
  y[i] = from_float<T>(apply_silu ? silu32(acc) : acc);
}

template <int W, typename T>
void launch(const Conv1dStepDims& d, T* window, const T* x, const float* weight, const float* bias, T* y,
            bool apply_silu, cudaStream_t stream) {
  const int64_t n = d.batch * d.dim;
  launch_chained("conv1d_step", conv1d_step_kernel<W, T>, dim3(unsigned((n + 127) / 128)), dim3(128), 0, stream, d,
                 window, x, weight, bias, y, apply_silu);
}

}  // namespace

template <typename T>
void conv1d_step(const Conv1dStepDims& d, T* window, const T* x, const float* weight, const float* bias, T* y,
                 bool apply_silu, cudaStream_t stream) {
  if (d.batch * d.dim <= 0) return;
  switch (d.width) {
    case 1: return launch<1>(d, window, x, weight, bias, y, apply_silu, stream);
    case 2: return launch<2>(d, window, x, weight, bias, y, apply_silu, stream);
    case 3: return launch<3>(d, window, x, weight, bias, y, apply_silu, stream);
    case 4: return launch<4>(d, window, x, weight, bias, y, apply_silu, stream);
    default: throw Error(detail::concat("conv1d_step (cuda): width must be 1 to 4, got ", d.width));
  }
}

#define ML_INSTANTIATE(T)                                                                                      \
  template void conv1d_step<T>(const Conv1dStepDims&, T*, const T*, const float*, const float*, T*, bool, \
                               cudaStream_t);
ML_INSTANTIATE(float)
ML_INSTANTIATE(bf16)

}  // namespace ml::cuda
