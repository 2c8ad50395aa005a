// Two or three cuBLASLt products per direction, as the CPU reference. The bias is written
// into y first and the product added on top (beta = 1), so y is written once per GEMM.
#include "../../core/chained_launch.cuh"
#include "../../core/cuda_check.h"
#include "../../core/cuda_math.cuh"
#include "../../core/device_allocator.h"
#include "../../core/partials.h"
#include "../gemm/gemm.h"
#include "linear.h"

namespace ml::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kRowsPerPartial = 256;

template <typename T>
__global__ void broadcast_bias_kernel(const float* __restrict__ bias, T* __restrict__ y, int64_t rows, int64_t out) {
  chain_wait();
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < rows * out; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = from_float<T>(bias[i % out]);
}

// partial[blockIdx.y][j] = Σ of dy[r][j] over this block's rows (one thread per column).
template <typename T>
__global__ void column_sums_kernel(const T* __restrict__ dy, float* __restrict__ partial, int64_t rows, int64_t out) {
  const int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (j >= out) return;
  const int64_t r0 = int64_t(blockIdx.y) * kRowsPerPartial, r1 = min(rows, r0 + kRowsPerPartial);
  float s = 0.f;
  for (int64_t r = r0; r < r1; ++r) s += to_float(dy[r * out + j]);
  partial[int64_t(blockIdx.y) * out + j] = s;
}

}  // namespace

template <typename T>
void linear_forward(const T* x, const T* weight, const float* bias, T* y, int64_t rows, int64_t in, int64_t out,
                    cudaStream_t stream) {
  if (rows <= 0 || out <= 0) return;
  if (bias) {
    launch_chained("linear_forward", broadcast_bias_kernel<T>, dim3(blocks_for(rows * out, kThreads)), dim3(kThreads),
                   0, stream, bias, y, rows, out);
  }
  gemm<T, T>(false, true, rows, out, in, 1.f, x, in, weight, in, bias ? 1.f : 0.f, y, out, stream, /*b_is_weight=*/true);
}

template <typename T>
void linear_backward(const T* x, const T* weight, const T* dy, T* dx, float* dweight, float* dbias, int64_t rows,
                     int64_t in, int64_t out, bool accumulate_dx, cudaStream_t stream) {
  if (rows <= 0) return;
  if (dx) gemm<T, T>(false, false, rows, in, out, 1.f, dy, out, weight, in, accumulate_dx ? 1.f : 0.f, dx, in, stream);
  gemm<T, float>(true, false, out, in, rows, 1.f, dy, out, x, in, 1.f, dweight, in, stream);
  if (!dbias) return;
  const int64_t parts = (rows + kRowsPerPartial - 1) / kRowsPerPartial;
  ML_CHECK(parts <= 65535, "linear_backward: ", rows, " rows exceed the bias-gradient grid");
  DeviceBuffer<float> partial(parts * out, "linear_backward");
  const dim3 grid(unsigned((out + kThreads - 1) / kThreads), unsigned(parts));
  column_sums_kernel<T><<<grid, kThreads, 0, stream>>>(dy, partial.get(), rows, out);
  ML_CUDA_CHECK_LAUNCH("linear_backward");
  sum_partials(partial.get(), parts, out, dbias, true, stream, "linear_backward");
}

#define ML_INSTANTIATE(T)                                                                                         \
  template void linear_forward<T>(const T*, const T*, const float*, T*, int64_t, int64_t, int64_t, cudaStream_t); \
  template void linear_backward<T>(const T*, const T*, const T*, T*, float*, float*, int64_t, int64_t, int64_t,   \
                                   bool, cudaStream_t);
ML_INSTANTIATE(float)
ML_INSTANTIATE(bf16)

}  // namespace ml::cuda
