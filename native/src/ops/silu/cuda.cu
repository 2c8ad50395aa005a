// Elementwise, so one grid-stride map per direction (core/cuda_map.cuh); the math is
// silu.h's in fp32.
#include "../../core/cuda_map.cuh"
#include "silu.h"

namespace ml::cuda {
namespace {

struct SiluF {
  __device__ float operator()(float x) const { return silu32(x); }
};
struct SiluGradF {
  __device__ float operator()(float x, float dy) const { return dy * silu_grad32(x); }
};

}  // namespace

template <typename T>
void silu_forward(const T* x, T* y, int64_t n, cudaStream_t stream) {
  map("silu_forward", SiluF{}, y, n, stream, x);
}

template <typename T>
void silu_backward(const T* x, const T* dy, T* dx, int64_t n, cudaStream_t stream) {
  map("silu_backward", SiluGradF{}, dx, n, stream, x, dy);
}

#define ML_INSTANTIATE(T)                                                   \
  template void silu_forward<T>(const T*, T*, int64_t, cudaStream_t);        \
  template void silu_backward<T>(const T*, const T*, T*, int64_t, cudaStream_t);
ML_INSTANTIATE(float)
ML_INSTANTIATE(bf16)

}  // namespace ml::cuda
