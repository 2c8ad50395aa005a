// Elementwise, so one grid-stride loop per direction; the math is silu.h's in fp32.
#include "../../core/cuda_check.h"
#include "../../core/cuda_math.cuh"
#include "silu.h"

namespace ml::cuda {
namespace {

template <typename T>
__global__ void silu_forward_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = from_float<T>(silu32(to_float(x[i])));
}

template <typename T>
__global__ void silu_backward_kernel(const T* __restrict__ x, const T* __restrict__ dy, T* __restrict__ dx,
                                     int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dx[i] = from_float<T>(to_float(dy[i]) * silu_grad32(to_float(x[i])));
}

}  // namespace

template <typename T>
void silu_forward(const T* x, T* y, int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  silu_forward_kernel<T><<<blocks_for(n, 256), 256, 0, stream>>>(x, y, n);
  ML_CUDA_CHECK_LAUNCH("silu_forward");
}

template <typename T>
void silu_backward(const T* x, const T* dy, T* dx, int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  silu_backward_kernel<T><<<blocks_for(n, 256), 256, 0, stream>>>(x, dy, dx, n);
  ML_CUDA_CHECK_LAUNCH("silu_backward");
}

#define ML_INSTANTIATE(T)                                                   \
  template void silu_forward<T>(const T*, T*, int64_t, cudaStream_t);        \
  template void silu_backward<T>(const T*, const T*, T*, int64_t, cudaStream_t);
ML_INSTANTIATE(float)
ML_INSTANTIATE(bf16)

}  // namespace ml::cuda
