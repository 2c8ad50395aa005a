// Elementwise, both directions in runs (core/cuda_map.cuh: map, gated_backward); the math is
// swiglu.h's (silu.h's activation) in fp32, SiLU on the MUFU (silu_fast).
#include "../../core/cuda_map.cuh"
#include "swiglu.h"

namespace ml::cuda {
namespace {

struct SwigluF {
  __device__ float operator()(float gate, float up) const { return silu_fast(gate) * up; }
};
struct SwigluAct {
  __device__ float value(float x) const { return silu_fast(x); }
  __device__ float grad(float x) const { return silu_grad_fast(x); }
};

}  // namespace

template <typename T>
void swiglu_forward(const T* gate, const T* up, T* y, int64_t n, cudaStream_t stream) {
  map("swiglu_forward", SwigluF{}, y, n, stream, gate, up);
}

template <typename T>
void swiglu_backward(const T* gate, const T* up, const T* dy, T* dgate, T* dup, int64_t n, cudaStream_t stream) {
  gated_backward("swiglu_backward", SwigluAct{}, gate, up, dy, dgate, dup, n, stream);
}

#define ML_INSTANTIATE(T)                                                                \
  template void swiglu_forward<T>(const T*, const T*, T*, int64_t, cudaStream_t);         \
  template void swiglu_backward<T>(const T*, const T*, const T*, T*, T*, int64_t, cudaStream_t);
ML_INSTANTIATE(float)
ML_INSTANTIATE(bf16)

}  // namespace ml::cuda
