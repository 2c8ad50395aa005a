// gelu: the exact (erf) GELU, as torch.nn.functional.gelu.
//   forward:  y = x · Φ(x) = ½ x (1 + erf(x/√2))
//   backward: dx = dy · (Φ(x) + x · φ(x))      φ the standard normal density (overwrites dx)
#pragma once
#include <cmath>
#include <cstdint>

namespace ml::cpu {

template <typename T>
inline T gelu(T x) {
  return T(0.5) * x * (T(1) + std::erf(x * T(0.70710678118654752)));
}

template <typename T>
inline T gelu_grad(T x) {
  return T(0.5) * (T(1) + std::erf(x * T(0.70710678118654752))) + x * std::exp(T(-0.5) * x * x) * T(0.39894228040143268);
}

template <typename T>
void gelu_forward(const T* x, T* y, int64_t n);

template <typename T>
void gelu_backward(const T* x, const T* dy, T* dx, int64_t n);

}  // namespace ml::cpu

#include "../../core/cuda_fwd.h"

namespace ml::cuda {

// The same on device pointers, enqueued on `stream`; T is float or __nv_bfloat16 (fp32 math).
template <typename T>
void gelu_forward(const T* x, T* y, int64_t n, cudaStream_t stream);

template <typename T>
void gelu_backward(const T* x, const T* dy, T* dx, int64_t n, cudaStream_t stream);

}  // namespace ml::cuda
