// rmsnorm's kernels (ops/rmsnorm/cuda.cu) with the mean taken out and a bias added. Forward:
// one block per row, the mean and then the centred sum of squares through block_sum.
// Backward: one warp per row, a fixed grid striding over rows; each warp adds its rows'
// dweight and dbias terms into its own shared-memory rows, the block adds its warps' rows in
// order, and the blocks' partials are added in order: deterministic.
#include "../../core/cuda_check.h"
#include "../../core/cuda_math.cuh"
#include "../../core/device_allocator.h"
#include "../../core/partials.h"
#include "layernorm.h"

namespace ml::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = 8;                    // rows in flight per backward block (fewer if wide)
constexpr int64_t kMaxBackwardBlocks = 528;  // fixed, so the sum order is too

template <typename T>
__global__ void layernorm_forward_kernel(const T* __restrict__ x, const float* __restrict__ residual,
                                         const float* __restrict__ weight, const float* __restrict__ bias,
                                         float* __restrict__ residual_out, T* __restrict__ y,
                                         float* __restrict__ mean, float* __restrict__ rstd, int64_t dim, float eps) {
  __shared__ float scratch[32];
  const int64_t base = int64_t(blockIdx.x) * dim;
  float sum = 0.f;
  for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) {
    const float r = to_float(x[base + j]) + (residual ? residual[base + j] : 0.f);
    residual_out[base + j] = r;
    sum += r;
  }
  const float mu = block_sum(sum, scratch) / float(dim);
  float sumsq = 0.f;
  for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) {
    const float c = residual_out[base + j] - mu;
    sumsq += c * c;
  }
  const float s = 1.f / sqrtf(block_sum(sumsq, scratch) / float(dim) + eps);
  if (threadIdx.x == 0) mean[blockIdx.x] = mu, rstd[blockIdx.x] = s;
  for (int64_t j = threadIdx.x; j < dim; j += blockDim.x)
    y[base + j] = from_float<T>((residual_out[base + j] - mu) * s * weight[j] + bias[j]);
}

template <typename T>
__global__ void layernorm_backward_kernel(const float* __restrict__ residual_out, const float* __restrict__ mean,
                                          const float* __restrict__ rstd, const float* __restrict__ weight,
                                          const T* __restrict__ dy, const float* __restrict__ dresidual_out,
                                          float* __restrict__ dx, float* __restrict__ dweight_partial,
                                          float* __restrict__ dbias_partial, int64_t rows, int64_t dim) {
  extern __shared__ float shared[];  // (2, warps, dim): each warp's share of dweight, then of dbias
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
  float* my_dw = shared + int64_t(warp) * dim;
  float* my_db = shared + int64_t(warps + warp) * dim;
  for (int64_t j = lane; j < dim; j += 32) my_dw[j] = 0.f, my_db[j] = 0.f;
  for (int64_t r = int64_t(blockIdx.x) * warps + warp; r < rows; r += int64_t(gridDim.x) * warps) {
    const int64_t base = r * dim;
    const float s = rstd[r], mu = mean[r];
    float sum_dn = 0.f, sum_dn_n = 0.f;
    for (int64_t j = lane; j < dim; j += 32) {
      const float n = (residual_out[base + j] - mu) * s, g = to_float(dy[base + j]), dn = g * weight[j];
      sum_dn += dn;
      sum_dn_n += dn * n;
      my_dw[j] += g * n;  // only this lane touches column j of this warp's rows
      my_db[j] += g;
    }
    for (int offset = 16; offset > 0; offset /= 2) {
      sum_dn += __shfl_xor_sync(0xffffffffu, sum_dn, offset);
      sum_dn_n += __shfl_xor_sync(0xffffffffu, sum_dn_n, offset);
    }
    const float mean_dn = sum_dn / float(dim), mean_dn_n = sum_dn_n / float(dim);
    for (int64_t j = lane; j < dim; j += 32) {
      const float n = (residual_out[base + j] - mu) * s;
      float g = s * (to_float(dy[base + j]) * weight[j] - mean_dn - n * mean_dn_n);
      if (dresidual_out) g += dresidual_out[base + j];
      dx[base + j] = g;
    }
  }
  __syncthreads();
  for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) {
    float total_w = 0.f, total_b = 0.f;
    for (int w = 0; w < warps; ++w) {
      total_w += shared[int64_t(w) * dim + j];
      total_b += shared[int64_t(warps + w) * dim + j];
    }
    dweight_partial[int64_t(blockIdx.x) * dim + j] = total_w;
    dbias_partial[int64_t(blockIdx.x) * dim + j] = total_b;
  }
}

}  // namespace

template <typename T>
void layernorm_forward(const T* x, const float* residual, const float* weight, const float* bias, float* residual_out,
                       T* y, float* mean, float* rstd, int64_t rows, int64_t dim, float eps, cudaStream_t stream) {
  if (rows <= 0 || dim <= 0) return;
  ML_CHECK(rows <= 0x7fffffff, "layernorm_forward: ", rows, " rows exceed one launch");
  layernorm_forward_kernel<T><<<unsigned(rows), kThreads, 0, stream>>>(x, residual, weight, bias, residual_out, y,
                                                                        mean, rstd, dim, eps);
  ML_CUDA_CHECK_LAUNCH("layernorm_forward");
}

template <typename T>
void layernorm_backward(const float* residual_out, const float* mean, const float* rstd, const float* weight,
                        const T* dy, const float* dresidual_out, float* dx, float* dweight, float* dbias, int64_t rows,
                        int64_t dim, cudaStream_t stream) {
  if (rows <= 0 || dim <= 0) return;
  const int warps = shared_row_warps(dim, 2, kWarps, "layernorm_backward");
  const size_t smem = 2 * size_t(warps) * size_t(dim) * sizeof(float);
  if (smem > 48 * 1024)
    ML_CUDA_CHECK("layernorm_backward", cudaFuncSetAttribute(layernorm_backward_kernel<T>,
                                                              cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  const int64_t blocks = std::min((rows + warps - 1) / warps, kMaxBackwardBlocks);
  DeviceBuffer<float> partial_w(blocks * dim, "layernorm_backward"), partial_b(blocks * dim, "layernorm_backward");
  layernorm_backward_kernel<T><<<unsigned(blocks), warps * 32, smem, stream>>>(
      residual_out, mean, rstd, weight, dy, dresidual_out, dx, partial_w.get(), partial_b.get(), rows, dim);
  ML_CUDA_CHECK_LAUNCH("layernorm_backward");
  sum_partials(partial_w.get(), blocks, dim, dweight, true, stream, "layernorm_backward");
  sum_partials(partial_b.get(), blocks, dim, dbias, true, stream, "layernorm_backward");
}

#define ML_INSTANTIATE(T)                                                                                         \
  template void layernorm_forward<T>(const T*, const float*, const float*, const float*, float*, T*, float*,      \
                                     float*, int64_t, int64_t, float, cudaStream_t);                             \
  template void layernorm_backward<T>(const float*, const float*, const float*, const float*, const T*,          \
                                      const float*, float*, float*, float*, int64_t, int64_t, cudaStream_t);
ML_INSTANTIATE(float)
ML_INSTANTIATE(bf16)

}  // namespace ml::cuda
