// One block per row (forward) / a fixed grid of blocks striding over rows (backward), each
// thread owning the columns j ≡ threadIdx.x (mod blockDim). Row sums go through block_sum;
// the backward's dweight is summed per block in shared memory, then across blocks in order.
#include "../../core/cuda_check.h"
#include "../../core/cuda_math.cuh"
#include "../../core/device_allocator.h"
#include "../../core/partials.h"
#include "rmsnorm.h"

namespace ml::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBackwardBlocks = 264;  // ~2 per SM on an H100; fixed, so the sum order is too

template <typename T>
__global__ void rmsnorm_forward_kernel(const T* __restrict__ x, const float* __restrict__ residual,
                                      const float* __restrict__ weight, float* __restrict__ residual_out,
                                      T* __restrict__ y, float* __restrict__ rstd, int64_t dim, float eps) {
  __shared__ float scratch[32];
  const int64_t base = int64_t(blockIdx.x) * dim;
  float sumsq = 0.f;
  for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) {
    const float r = to_float(x[base + j]) + (residual ? residual[base + j] : 0.f);
    residual_out[base + j] = r;
    sumsq += r * r;
  }
  const float s = 1.f / sqrtf(block_sum(sumsq, scratch) / float(dim) + eps);
  if (threadIdx.x == 0) rstd[blockIdx.x] = s;
  for (int64_t j = threadIdx.x; j < dim; j += blockDim.x)
    y[base + j] = from_float<T>(residual_out[base + j] * s * weight[j]);
}

template <typename T>
__global__ void rmsnorm_backward_kernel(const float* __restrict__ residual_out, const float* __restrict__ rstd,
                                       const float* __restrict__ weight, const T* __restrict__ dy,
                                       const float* __restrict__ dresidual_out, float* __restrict__ dx,
                                       float* __restrict__ dweight_partial, int64_t rows, int64_t dim) {
  extern __shared__ float dw[];  // dim values: this block's share of dweight
  __shared__ float scratch[32];
  for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) dw[j] = 0.f;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const int64_t base = r * dim;
    const float s = rstd[r];
    float dot = 0.f;
    for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) {
      const float n = residual_out[base + j] * s, g = to_float(dy[base + j]);
      dot += g * weight[j] * n;
      dw[j] += g * n;  // only this thread touches column j
    }
    const float mean_dot = block_sum(dot, scratch) / float(dim);
    for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) {
      const float n = residual_out[base + j] * s;
      float g = s * (to_float(dy[base + j]) * weight[j] - n * mean_dot);
      if (dresidual_out) g += dresidual_out[base + j];
      dx[base + j] = g;
    }
  }
  for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) dweight_partial[int64_t(blockIdx.x) * dim + j] = dw[j];
}

}  // namespace

template <typename T>
void rmsnorm_forward(const T* x, const float* residual, const float* weight, float* residual_out, T* y, float* rstd,
                     int64_t rows, int64_t dim, float eps, cudaStream_t stream) {
  if (rows <= 0 || dim <= 0) return;
  ML_CHECK(rows <= 0x7fffffff, "rmsnorm_forward: ", rows, " rows exceed one launch");
  rmsnorm_forward_kernel<T><<<unsigned(rows), kThreads, 0, stream>>>(x, residual, weight, residual_out, y, rstd, dim,
                                                                      eps);
  ML_CUDA_CHECK_LAUNCH("rmsnorm_forward");
}

template <typename T>
void rmsnorm_backward(const float* residual_out, const float* rstd, const float* weight, const T* dy,
                      const float* dresidual_out, float* dx, float* dweight, int64_t rows, int64_t dim,
                      cudaStream_t stream) {
  if (rows <= 0 || dim <= 0) return;
  const size_t smem = size_t(dim) * sizeof(float);
  ML_CHECK(smem <= 48 * 1024, "rmsnorm_backward: dim ", dim, " exceeds the 12288 columns one block can sum");
  const int64_t blocks = std::min(rows, kMaxBackwardBlocks);
  DeviceBuffer<float> partial(blocks * dim, "rmsnorm_backward");
  rmsnorm_backward_kernel<T><<<unsigned(blocks), kThreads, smem, stream>>>(residual_out, rstd, weight, dy,
                                                                            dresidual_out, dx, partial.get(), rows, dim);
  ML_CUDA_CHECK_LAUNCH("rmsnorm_backward");
  sum_partials(partial.get(), blocks, dim, dweight, true, stream, "rmsnorm_backward");
}

#define ML_INSTANTIATE(T)                                                                                       \
  template void rmsnorm_forward<T>(const T*, const float*, const float*, float*, T*, float*, int64_t, int64_t,  \
                                   float, cudaStream_t);                                                       \
  template void rmsnorm_backward<T>(const float*, const float*, const float*, const T*, const float*, float*,   \
                                    float*, int64_t, int64_t, cudaStream_t);
ML_INSTANTIATE(float)
ML_INSTANTIATE(bf16)

}  // namespace ml::cuda
