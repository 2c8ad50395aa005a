// Elementwise, both directions in runs (core/cuda_map.cuh: map, gated_backward); the math is
// geglu.h's (gelu.h's exact GELU) in fp32.
#include "../../core/cuda_map.cuh"
#include "geglu.h"

namespace ml::cuda {
namespace {

struct GegluF {
  __device__ float operator()(float gate, float up) const { return gelu32(gate) * up; }
};
struct GegluAct {
  __device__ float value(float x) const { return gelu32(x); }
  __device__ float grad(float x) const { return gelu_grad32(x); }
};

}  // namespace

template <typename T>
void geglu_forward(const T* gate, const T* up, T* y, int64_t n, cudaStream_t stream) {
  map("geglu_forward", GegluF{}, y, n, stream, gate, up);
}

template <typename T>
void geglu_backward(const T* gate, const T* up, const T* dy, T* dgate, T* dup, int64_t n, cudaStream_t stream) {
  gated_backward("geglu_backward", GegluAct{}, gate, up, dy, dgate, dup, n, stream);
}

#define ML_INSTANTIATE(T)                                                               \
  template void geglu_forward<T>(const T*, const T*, T*, int64_t, cudaStream_t);         \
  template void geglu_backward<T>(const T*, const T*, const T*, T*, T*, int64_t, cudaStream_t);
ML_INSTANTIATE(float)
ML_INSTANTIATE(bf16)

}  // namespace ml::cuda
