// Elementwise: the forward is a map (core/cuda_map.cuh), the backward (two outputs) one
// grid-stride loop; the math is geglu.h's (gelu.h's exact GELU) in fp32.
#include "../../core/cuda_map.cuh"
#include "geglu.h"

namespace ml::cuda {
namespace {

struct GegluF {
  __device__ float operator()(float gate, float up) const { return gelu32(gate) * up; }
};

template <typename T>
__global__ void geglu_backward_kernel(const T* __restrict__ gate, const T* __restrict__ up,
                                      const T* __restrict__ dy, T* __restrict__ dgate, T* __restrict__ dup,
                                      int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float g = to_float(gate[i]), u = to_float(up[i]), d = to_float(dy[i]);
    dgate[i] = from_float<T>(d * u * gelu_grad32(g));
    dup[i] = from_float<T>(d * gelu32(g));
  }
}

}  // namespace

template <typename T>
void geglu_forward(const T* gate, const T* up, T* y, int64_t n, cudaStream_t stream) {
  map("geglu_forward", GegluF{}, y, n, stream, gate, up);
}

template <typename T>
void geglu_backward(const T* gate, const T* up, const T* dy, T* dgate, T* dup, int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  geglu_backward_kernel<T><<<blocks_for(n, 256), 256, 0, stream>>>(gate, up, dy, dgate, dup, n);
  ML_CUDA_CHECK_LAUNCH("geglu_backward");
}

#define ML_INSTANTIATE(T)                                                               \
  template void geglu_forward<T>(const T*, const T*, T*, int64_t, cudaStream_t);         \
  template void geglu_backward<T>(const T*, const T*, const T*, T*, T*, int64_t, cudaStream_t);
ML_INSTANTIATE(float)
ML_INSTANTIATE(bf16)

}  // namespace ml::cuda
