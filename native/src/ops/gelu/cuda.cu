// Elementwise, so one grid-stride map per direction (core/cuda_map.cuh); the math is
// gelu.h's in fp32.
#include "../../core/cuda_map.cuh"
#include "gelu.h"

namespace ml::cuda {
namespace {

struct GeluF {
  __device__ float operator()(float x) const { return gelu32(x); }
};
struct GeluGradF {
  __device__ float operator()(float x, float dy) const {
    return dy * gelu_grad32(x);
  }
};

}  // namespace

template <typename T>
void gelu_forward(const T* x, T* y, int64_t n, cudaStream_t stream) {
  map("gelu_forward", GeluF{}, y, n, stream, x);
}

template <typename T>
void gelu_backward(const T* x, const T* dy, T* dx, int64_t n, cudaStream_t stream) {
  map("gelu_backward", GeluGradF{}, dx, n, stream, x, dy);
}

#define ML_INSTANTIATE(T)                                                   \
  template void gelu_forward<T>(const T*, T*, int64_t, cudaStream_t);        \
  template void gelu_backward<T>(const T*, const T*, T*, int64_t, cudaStream_t);
ML_INSTANTIATE(float)
ML_INSTANTIATE(bf16)

}  // namespace ml::cuda
