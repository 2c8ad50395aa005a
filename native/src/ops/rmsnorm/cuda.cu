// Forward: one block per row, each thread owning the columns j ≡ threadIdx.x (mod blockDim),
// row sums through block_sum. A few rows (a decode step's) get 1024 threads each holding its
// few columns in registers, their loads all issued before the sum: one row on 256 threads
// walked its columns one dependent round trip at a time (8 µs for 2048 columns on an H200).
// Many rows get ⌈dim / 4⌉ threads, each holding 4 (256 threads striding over 512 columns
// stored the sums and read them back).
// Backward: one warp per row (its sum is a shuffle butterfly, no block barrier per row), a
// fixed grid striding over rows; each warp adds its rows' dweight terms into its own
// shared-memory row, the block adds its warps' rows in order, and the blocks' partials are
// added in order: deterministic.
#include "../../core/chained_launch.cuh"
#include "../../core/cuda_check.h"
#include "../../core/cuda_math.cuh"
#include "../../core/device_allocator.h"
#include "../../core/partials.h"
#include "rmsnorm.h"

namespace ml::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = 8;                    // rows in flight per backward block (fewer if wide)
constexpr int64_t kMaxBackwardBlocks = 528;  // ~4 per SM on an H100; fixed, so the sum order is too

constexpr int kRowThreads = 1024, kRowColumns = 8;  // a few rows: columns per thread, rows up to 8192 wide
constexpr int64_t kFewRows = 64;
// Many rows up to 4096 wide: just enough threads for 4 columns each, held in registers (a
// row's loads all in flight before its sum; residual_out written once, not read back).
constexpr int kManyRowColumns = 4;

// kHeld > 0: each thread holds its kHeld columns in registers (blockDim.x · kHeld ≥ dim);
// 0: it strides over any number of columns and reads the sums back from residual_out.
template <typename T, int kHeld>
__global__ void rmsnorm_forward_kernel(const T* __restrict__ x, const float* __restrict__ residual,
                                      const float* __restrict__ weight, float* __restrict__ residual_out,
                                      T* __restrict__ y, float* __restrict__ rstd, int64_t dim, float eps) {
  __shared__ float scratch[32];
  chain_wait();
  const int64_t base = int64_t(blockIdx.x) * dim;
  const auto sum_at = [&](int64_t j) { return to_float(x[base + j]) + (residual ? residual[base + j] : 0.f); };
  float held[kHeld > 0 ? kHeld : 1];
  float sumsq = 0.f;
  if constexpr (kHeld > 0) {
#pragma unroll
    for (int k = 0; k < kHeld; ++k) {
      const int64_t j = threadIdx.x + int64_t(k) * blockDim.x;
      held[k] = j < dim ? sum_at(j) : 0.f;
      sumsq += held[k] * held[k];
    }
  } else {
    for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) {
      const float r = sum_at(j);
      residual_out[base + j] = r;
      sumsq += r * r;
    }
  }
  const float s = 1.f / sqrtf(block_sum(sumsq, scratch) / float(dim) + eps);
  if (threadIdx.x == 0) rstd[blockIdx.x] = s;
  if constexpr (kHeld > 0) {
#pragma unroll
    for (int k = 0; k < kHeld; ++k) {
      const int64_t j = threadIdx.x + int64_t(k) * blockDim.x;
      if (j >= dim) break;
      residual_out[base + j] = held[k];
      y[base + j] = from_float<T>(held[k] * s * weight[j]);
    }
  } else {
    for (int64_t j = threadIdx.x; j < dim; j += blockDim.x)
      y[base + j] = from_float<T>(residual_out[base + j] * s * weight[j]);
  }
}

template <typename T>
__global__ void rmsnorm_backward_kernel(const float* __restrict__ residual_out, const float* __restrict__ rstd,
                                       const float* __restrict__ weight, const T* __restrict__ dy,
                                       const float* __restrict__ dresidual_out, float* __restrict__ dx,
                                       float* __restrict__ dweight_partial, int64_t rows, int64_t dim) {
  extern __shared__ float dw[];  // (warps, dim): each warp's share of dweight
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
  float* my_dw = dw + int64_t(warp) * dim;
  for (int64_t j = lane; j < dim; j += 32) my_dw[j] = 0.f;
  for (int64_t r = int64_t(blockIdx.x) * warps + warp; r < rows; r += int64_t(gridDim.x) * warps) {
    const int64_t base = r * dim;
    const float s = rstd[r];
    float dot = 0.f;
    for (int64_t j = lane; j < dim; j += 32) {
      const float n = residual_out[base + j] * s, g = to_float(dy[base + j]);
      dot += g * weight[j] * n;
      my_dw[j] += g * n;  // only this lane touches column j of this warp's row
    }
    for (int offset = 16; offset > 0; offset /= 2) dot += __shfl_xor_sync(0xffffffffu, dot, offset);
    const float mean_dot = dot / float(dim);
    for (int64_t j = lane; j < dim; j += 32) {
      const float n = residual_out[base + j] * s;
      float g = s * (to_float(dy[base + j]) * weight[j] - n * mean_dot);
      if (dresidual_out) g += dresidual_out[base + j];
      dx[base + j] = g;
    }
  }
  __syncthreads();
  for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) {
    float total = 0.f;
    for (int w = 0; w < warps; ++w) total += dw[int64_t(w) * dim + j];
    dweight_partial[int64_t(blockIdx.x) * dim + j] = total;
  }
}

}  // namespace

template <typename T>
void rmsnorm_forward(const T* x, const float* residual, const float* weight, float* residual_out, T* y, float* rstd,
                     int64_t rows, int64_t dim, float eps, cudaStream_t stream) {
  if (rows <= 0 || dim <= 0) return;
  ML_CHECK(rows <= 0x7fffffff, "rmsnorm_forward: ", rows, " rows exceed one launch");
  if (rows <= kFewRows && dim <= int64_t(kRowThreads) * kRowColumns)
    launch_chained("rmsnorm_forward", rmsnorm_forward_kernel<T, kRowColumns>, dim3(unsigned(rows)), dim3(kRowThreads),
                   0, stream, x, residual, weight, residual_out, y, rstd, dim, eps);
  else if (dim <= int64_t(kRowThreads) * kManyRowColumns)
    launch_chained("rmsnorm_forward", rmsnorm_forward_kernel<T, kManyRowColumns>, dim3(unsigned(rows)),
                   dim3(unsigned((dim + 32 * kManyRowColumns - 1) / (32 * kManyRowColumns) * 32)), 0, stream, x,
                   residual, weight, residual_out, y, rstd, dim, eps);
  else
    launch_chained("rmsnorm_forward", rmsnorm_forward_kernel<T, 0>, dim3(unsigned(rows)), dim3(kThreads), 0, stream, x,
                   residual, weight, residual_out, y, rstd, dim, eps);
}

template <typename T>
void rmsnorm_backward(const float* residual_out, const float* rstd, const float* weight, const T* dy,
                      const float* dresidual_out, float* dx, float* dweight, int64_t rows, int64_t dim,
                      cudaStream_t stream) {
  if (rows <= 0 || dim <= 0) return;
  const int warps = shared_row_warps(dim, 1, kWarps, "rmsnorm_backward");
  const size_t smem = size_t(warps) * size_t(dim) * sizeof(float);
  if (smem > 48 * 1024)
    ML_CUDA_CHECK("rmsnorm_backward", cudaFuncSetAttribute(rmsnorm_backward_kernel<T>,
                                                            cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  const int64_t blocks = std::min((rows + warps - 1) / warps, kMaxBackwardBlocks);
  DeviceBuffer<float> partial(blocks * dim, "rmsnorm_backward");
  rmsnorm_backward_kernel<T><<<unsigned(blocks), warps * 32, smem, stream>>>(residual_out, rstd, weight, dy,
                                                                               dresidual_out, dx, partial.get(), rows,
                                                                               dim);
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
