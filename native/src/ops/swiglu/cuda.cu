// Elementwise: the forward is a map (core/cuda_map.cuh), the backward (two outputs) one
// grid-stride loop; the math is swiglu.h's (silu.h's activation) in fp32.
#include "../../core/cuda_map.cuh"
#include "swiglu.h"

namespace ml::cuda {
namespace {

struct SwigluF {
  __device__ float operator()(float gate, float up) const { return silu32(gate) * up; }
};

template <typename T>
__global__ void swiglu_backward_kernel(const T* __restrict__ gate, const T* __restrict__ up,
                                       const T* __restrict__ dy, T* __restrict__ dgate, T* __restrict__ dup,
                                       int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float g = to_float(gate[i]), u = to_float(up[i]), d = to_float(dy[i]);
    dgate[i] = from_float<T>(d * u * silu_grad32(g));
    dup[i] = from_float<T>(d * silu32(g));
  }
}

}  // namespace

template <typename T>
void swiglu_forward(const T* gate, const T* up, T* y, int64_t n, cudaStream_t stream) {
  map("swiglu_forward", SwigluF{}, y, n, stream, gate, up);
}

template <typename T>
void swiglu_backward(const T* gate, const T* up, const T* dy, T* dgate, T* dup, int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  swiglu_backward_kernel<T><<<blocks_for(n, 256), 256, 0, stream>>>(gate, up, dy, dgate, dup, n);
  ML_CUDA_CHECK_LAUNCH("swiglu_backward");
}

#define ML_INSTANTIATE(T)                                                                \
  template void swiglu_forward<T>(const T*, const T*, T*, int64_t, cudaStream_t);         \
  template void swiglu_backward<T>(const T*, const T*, const T*, T*, T*, int64_t, cudaStream_t);
ML_INSTANTIATE(float)
ML_INSTANTIATE(bf16)

}  // namespace ml::cuda
