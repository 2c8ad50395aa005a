// A thread owns one channel over a run of kSteps time steps and slides a window of the
// last width−1 inputs along it, so each input is read once per run and a warp's loads at
// each step are 32 consecutive channels. The backward recomputes the pre-activation, pushes
// each step's gradient into a ring of the width outputs it touches, and writes an input
// gradient once no later step can touch it.
#include "../../core/cuda_check.h"
#include "../../core/cuda_math.cuh"
#include "../../core/device_allocator.h"
#include "../../core/partials.h"
#include "conv1d.h"

namespace ml::cuda {
namespace {

constexpr int kChannels = 128;  // threads per block, one channel each
constexpr int kSteps = 64;      // time steps per thread

struct Run {
  int64_t b, c, t0, t1;  // batch, channel, time steps [t0, t1)
  bool ok;
};

__device__ __forceinline__ Run this_run(const Conv1dDims& d) {
  Run r;
  r.b = blockIdx.z;
  r.c = int64_t(blockIdx.x) * kChannels + threadIdx.x;
  r.t0 = int64_t(blockIdx.y) * kSteps;
  r.t1 = min(d.len, r.t0 + kSteps);
  r.ok = r.c < d.dim;
  return r;
}

template <int W, typename T>
__device__ __forceinline__ void load_history(const Conv1dDims& d, const T* x, const Run& r, float (&hist)[W]) {
#pragma unroll
  for (int k = 0; k < W - 1; ++k) {  // hist[k] = x[t0 − (W−1) + k]
    const int64_t src = r.t0 - (W - 1) + k;
    hist[k] = src >= 0 ? to_float(x[(r.b * d.len + src) * d.dim + r.c]) : 0.f;
  }
}

// Pre-activation at the step whose input is xt; hist holds the W−1 inputs before it and
// then slides by one.
template <int W>
__device__ __forceinline__ float conv_step(const float (&w)[W], float bias, float (&hist)[W], float xt) {
  hist[W - 1] = xt;
  float acc = bias;
#pragma unroll
  for (int k = 0; k < W; ++k) acc += w[k] * hist[k];
  return acc;
}

template <int W>
__device__ __forceinline__ void slide(float (&hist)[W]) {
#pragma unroll
  for (int k = 0; k < W - 1; ++k) hist[k] = hist[k + 1];
}

template <int W, typename T>
__global__ void conv1d_forward_kernel(Conv1dDims d, const T* __restrict__ x, const float* __restrict__ weight,
                                      const float* __restrict__ bias, T* __restrict__ y, bool apply_silu) {
  const Run r = this_run(d);
  if (!r.ok) return;
  float w[W], hist[W];
#pragma unroll
  for (int k = 0; k < W; ++k) w[k] = weight[r.c * W + k];
  const float b = bias ? bias[r.c] : 0.f;
  load_history<W>(d, x, r, hist);
  for (int64_t t = r.t0; t < r.t1; ++t) {
    const int64_t at = (r.b * d.len + t) * d.dim + r.c;
    const float pre = conv_step<W>(w, b, hist, to_float(x[at]));
    y[at] = from_float<T>(apply_silu ? silu32(pre) : pre);
    slide<W>(hist);
  }
}

template <int W, typename T>
__global__ void conv1d_backward_kernel(Conv1dDims d, const T* __restrict__ x, const float* __restrict__ weight,
                                       const float* __restrict__ bias, const T* __restrict__ dy, T* __restrict__ dx,
                                       float* __restrict__ dweight_partial, float* __restrict__ dbias_partial,
                                       bool apply_silu) {
  const Run r = this_run(d);
  if (!r.ok) return;
  float w[W], hist[W], ring[W], dw[W];
#pragma unroll
  for (int k = 0; k < W; ++k) {
    w[k] = weight[r.c * W + k];
    ring[k] = 0.f;  // ring[j]: gradient of the input at step s − (W−1) + j
    dw[k] = 0.f;
  }
  const float b = bias ? bias[r.c] : 0.f;
  float db = 0.f;
  load_history<W>(d, x, r, hist);
  // Steps up to W−1 past the run still send gradient into its inputs.
  const int64_t end = min(d.len, r.t1 + W - 1);
  for (int64_t s = r.t0; s < end; ++s) {
    const int64_t at = (r.b * d.len + s) * d.dim + r.c;
    const float pre = conv_step<W>(w, b, hist, to_float(x[at]));
    const float g = to_float(dy[at]) * (apply_silu ? silu_grad32(pre) : 1.f);
#pragma unroll
    for (int k = 0; k < W; ++k) ring[k] += w[k] * g;
    if (s < r.t1) {  // this run's own steps own the weight gradient of their products
#pragma unroll
      for (int k = 0; k < W; ++k) dw[k] += g * hist[k];
      db += g;
    }
    const int64_t done = s - (W - 1);  // no later step reaches this input
    if (done >= r.t0) dx[(r.b * d.len + done) * d.dim + r.c] = from_float<T>(ring[0]);
    slide<W>(hist);
    slide<W>(ring);
    ring[W - 1] = 0.f;
  }
#pragma unroll
  for (int j = 0; j < W - 1; ++j) {  // the last inputs of the sequence: nothing after them
    const int64_t p = end - (W - 1) + j;
    if (p >= r.t0 && p < r.t1) dx[(r.b * d.len + p) * d.dim + r.c] = from_float<T>(ring[j]);
  }
  const int64_t part = r.b * gridDim.y + blockIdx.y;
#pragma unroll
  for (int k = 0; k < W; ++k) dweight_partial[(part * d.dim + r.c) * W + k] = dw[k];
  dbias_partial[part * d.dim + r.c] = db;
}

dim3 grid_for(const Conv1dDims& d, const char* op) {
  ML_CHECK(d.width >= 1 && d.width <= 4, op, ": width ", d.width, " is not supported on CUDA (1 to 4)");
  ML_CHECK(d.batch <= 65535 && (d.len + kSteps - 1) / kSteps <= 65535, op, ": batch ", d.batch, " × len ", d.len,
           " exceed one launch");
  return dim3(unsigned((d.dim + kChannels - 1) / kChannels), unsigned((d.len + kSteps - 1) / kSteps),
              unsigned(d.batch));
}

}  // namespace

template <typename T>
void conv1d_forward(const Conv1dDims& d, const T* x, const float* weight, const float* bias, T* y, bool apply_silu,
                    cudaStream_t stream) {
  if (d.batch <= 0 || d.len <= 0 || d.dim <= 0) return;
  const dim3 grid = grid_for(d, "conv1d_forward");
  switch (d.width) {
    case 1: conv1d_forward_kernel<1, T><<<grid, kChannels, 0, stream>>>(d, x, weight, bias, y, apply_silu); break;
    case 2: conv1d_forward_kernel<2, T><<<grid, kChannels, 0, stream>>>(d, x, weight, bias, y, apply_silu); break;
    case 3: conv1d_forward_kernel<3, T><<<grid, kChannels, 0, stream>>>(d, x, weight, bias, y, apply_silu); break;
    default: conv1d_forward_kernel<4, T><<<grid, kChannels, 0, stream>>>(d, x, weight, bias, y, apply_silu); break;
  }
  ML_CUDA_CHECK_LAUNCH("conv1d_forward");
}

template <typename T>
void conv1d_backward(const Conv1dDims& d, const T* x, const float* weight, const float* bias, const T* dy, T* dx,
                     float* dweight, float* dbias, bool apply_silu, cudaStream_t stream) {
  if (d.batch <= 0 || d.len <= 0 || d.dim <= 0) return;
  const dim3 grid = grid_for(d, "conv1d_backward");
  const int64_t parts = d.batch * int64_t(grid.y);
  DeviceBuffer<float> pw(parts * d.dim * d.width, "conv1d_backward"), pb(parts * d.dim, "conv1d_backward");
#define ML_CONV_BWD(W)                                                                                           \
  conv1d_backward_kernel<W, T><<<grid, kChannels, 0, stream>>>(d, x, weight, bias, dy, dx, pw.get(), pb.get(), \
                                                               apply_silu)
  switch (d.width) {
    case 1: ML_CONV_BWD(1); break;
    case 2: ML_CONV_BWD(2); break;
    case 3: ML_CONV_BWD(3); break;
    default: ML_CONV_BWD(4); break;
  }
#undef ML_CONV_BWD
  ML_CUDA_CHECK_LAUNCH("conv1d_backward");
  sum_partials(pw.get(), parts, d.dim * d.width, dweight, true, stream, "conv1d_backward");
  if (dbias) sum_partials(pb.get(), parts, d.dim, dbias, true, stream, "conv1d_backward");
}

#define ML_INSTANTIATE(T)                                                                                         \
  template void conv1d_forward<T>(const Conv1dDims&, const T*, const float*, const float*, T*, bool, cudaStream_t); \
  template void conv1d_backward<T>(const Conv1dDims&, const T*, const float*, const float*, const T*, T*, float*,  \
                                   float*, bool, cudaStream_t);
ML_INSTANTIATE(float)
ML_INSTANTIATE(bf16)

}  // namespace ml::cuda
