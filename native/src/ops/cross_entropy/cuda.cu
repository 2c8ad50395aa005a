// Per vocabulary chunk: one cuBLASLt product makes the chunk's fp32 logits, then one block
// per row folds them into a running (max, sum of exp) — the online softmax — and picks the
// target's logit when it falls in the chunk. The backward remakes each chunk's logits, turns
// them into (softmax − onehot)·scale in T, and adds its two products into dh and dE.
#include <algorithm>
#include <cmath>

#include "../../core/cuda_check.h"
#include "../../core/cuda_math.cuh"
#include "../../core/device_allocator.h"
#include "../gemm/gemm.h"
#include "cross_entropy.h"

namespace ml::cuda {
namespace {

constexpr int kThreads = 256;

int64_t chunk_columns(const HeadDims& d) {
  if (d.chunk > 0) return std::min(d.chunk, d.vocab);
  const int64_t cols = std::clamp<int64_t>((int64_t{1} << 25) / std::max<int64_t>(d.rows, 1), 256, d.vocab);
  return cols < d.vocab ? std::max<int64_t>(8, cols / 8 * 8) : cols;  // keeps chunk starts 16-byte aligned
}

__global__ void online_softmax_init_kernel(float* running_max, float* running_sum, float* target_logit, int64_t rows) {
  for (int64_t r = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; r < rows; r += int64_t(gridDim.x) * blockDim.x) {
    running_max[r] = -INFINITY;
    running_sum[r] = 0.f;
    target_logit[r] = 0.f;
  }
}

__global__ void online_softmax_update_kernel(const float* __restrict__ logits, int64_t cols, int64_t v0,
                                             const int32_t* __restrict__ targets, float* __restrict__ running_max,
                                             float* __restrict__ running_sum, float* __restrict__ target_logit) {
  __shared__ float scratch[32];
  const int64_t r = blockIdx.x;
  const float* row = logits + r * cols;
  float m = -INFINITY;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) m = fmaxf(m, row[j]);
  const float old_max = running_max[r];
  const float new_max = fmaxf(old_max, block_max(m, scratch));
  float s = 0.f;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) s += expf(row[j] - new_max);
  s = block_sum(s, scratch);
  if (threadIdx.x == 0) {
    running_sum[r] = running_sum[r] * expf(old_max - new_max) + s;  // exp(−inf) = 0 on the first chunk
    running_max[r] = new_max;
    const int64_t t = int64_t(targets[r]) - v0;
    if (t >= 0 && t < cols) target_logit[r] = row[t];
  }
}

// One block: lse per row, and the mean loss summed in fp64 in a fixed order.
__global__ void finish_kernel(const float* __restrict__ running_max, const float* __restrict__ running_sum,
                              const float* __restrict__ target_logit, float* __restrict__ lse,
                              float* __restrict__ loss, int64_t rows) {
  __shared__ double scratch[32];
  double total = 0;
  for (int64_t r = threadIdx.x; r < rows; r += blockDim.x) {
    const float l = running_max[r] + logf(running_sum[r]);
    lse[r] = l;
    total += double(l) - double(target_logit[r]);
  }
  total = block_sum(total, scratch);
  if (threadIdx.x == 0) loss[0] = float(total / double(rows));
}

template <typename T>
__global__ void softmax_grad_kernel(const float* __restrict__ logits, const float* __restrict__ lse,
                                    const int32_t* __restrict__ targets, T* __restrict__ p, int64_t rows,
                                    int64_t cols, int64_t v0, float scale) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < rows * cols; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / cols, j = i % cols;
    float g = expf(logits[i] - lse[r]) * scale;
    if (int64_t(targets[r]) - v0 == j) g -= scale;
    p[i] = from_float<T>(g);
  }
}

}  // namespace

template <typename T>
void cross_entropy_forward(const HeadDims& d, const T* h, const T* E, const int32_t* targets, float* lse, float* loss,
                           cudaStream_t stream) {
  ML_CHECK(d.rows > 0 && d.vocab > 0 && d.dim > 0, "cross_entropy_forward: empty problem rows=", d.rows, " vocab=",
           d.vocab, " dim=", d.dim);
  ML_CHECK(d.rows <= 0x7fffffff, "cross_entropy_forward: ", d.rows, " rows exceed one launch");
  const int64_t cols = chunk_columns(d);
  DeviceBuffer<float> logits(d.rows * cols, "cross_entropy_forward"), state(3 * d.rows, "cross_entropy_forward");
  float *running_max = state.get(), *running_sum = running_max + d.rows, *target_logit = running_sum + d.rows;
  online_softmax_init_kernel<<<blocks_for(d.rows, kThreads), kThreads, 0, stream>>>(running_max, running_sum,
                                                                                     target_logit, d.rows);
  ML_CUDA_CHECK_LAUNCH("cross_entropy_forward");
  for (int64_t v0 = 0; v0 < d.vocab; v0 += cols) {
    const int64_t vc = std::min(cols, d.vocab - v0);
    gemm<T, float>(false, true, d.rows, vc, d.dim, 1.f, h, d.dim, E + v0 * d.dim, d.dim, 0.f, logits.get(), vc, stream);
    online_softmax_update_kernel<<<unsigned(d.rows), kThreads, 0, stream>>>(logits.get(), vc, v0, targets, running_max,
                                                                           running_sum, target_logit);
    ML_CUDA_CHECK_LAUNCH("cross_entropy_forward");
  }
  finish_kernel<<<1, 1024, 0, stream>>>(running_max, running_sum, target_logit, lse, loss, d.rows);
  ML_CUDA_CHECK_LAUNCH("cross_entropy_forward");
}

template <typename T>
void cross_entropy_backward(const HeadDims& d, const T* h, const T* E, const int32_t* targets, const float* lse,
                            float dloss, float* dh, float* dE, cudaStream_t stream) {
  ML_CHECK(d.rows > 0 && d.vocab > 0 && d.dim > 0, "cross_entropy_backward: empty problem rows=", d.rows, " vocab=",
           d.vocab, " dim=", d.dim);
  const int64_t cols = chunk_columns(d);
  const float scale = dloss / float(d.rows);
  DeviceBuffer<float> logits(d.rows * cols, "cross_entropy_backward");
  DeviceBuffer<T> p(d.rows * cols, "cross_entropy_backward");
  for (int64_t v0 = 0; v0 < d.vocab; v0 += cols) {
    const int64_t vc = std::min(cols, d.vocab - v0);
    const T* Ec = E + v0 * d.dim;
    gemm<T, float>(false, true, d.rows, vc, d.dim, 1.f, h, d.dim, Ec, d.dim, 0.f, logits.get(), vc, stream);
    softmax_grad_kernel<T><<<blocks_for(d.rows * vc, kThreads), kThreads, 0, stream>>>(logits.get(), lse, targets,
                                                                                      p.get(), d.rows, vc, v0, scale);
    ML_CUDA_CHECK_LAUNCH("cross_entropy_backward");
    gemm<T, float>(false, false, d.rows, d.dim, vc, 1.f, p.get(), vc, Ec, d.dim, v0 ? 1.f : 0.f, dh, d.dim, stream);
    gemm<T, float>(true, false, vc, d.dim, d.rows, 1.f, p.get(), vc, h, d.dim, 1.f, dE + v0 * d.dim, d.dim, stream);
  }
}

#define ML_INSTANTIATE(T)                                                                                            \
  template void cross_entropy_forward<T>(const HeadDims&, const T*, const T*, const int32_t*, float*, float*,        \
                                         cudaStream_t);                                                             \
  template void cross_entropy_backward<T>(const HeadDims&, const T*, const T*, const int32_t*, const float*, float, \
                                          float*, float*, cudaStream_t);
ML_INSTANTIATE(float)
ML_INSTANTIATE(bf16)

}  // namespace ml::cuda
