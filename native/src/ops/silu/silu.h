// silu: x · sigmoid(x), elementwise.
//   forward:  y = x σ(x)
//   backward: dx = dy · σ(x) · (1 + x (1 − σ(x)))     (overwrites dx)
#pragma once
#include <cmath>
#include <cstdint>

namespace ml::cpu {

template <typename T>
inline T sigmoid(T x) {
  return T(1) / (T(1) + std::exp(-x));
}

template <typename T>
inline T silu(T x) {
  return x * sigmoid(x);
}

// d silu(x) / dx
template <typename T>
inline T silu_grad(T x) {
  const T s = sigmoid(x);
  return s * (T(1) + x * (T(1) - s));
}

template <typename T>
void silu_forward(const T* x, T* y, int64_t n);

template <typename T>
void silu_backward(const T* x, const T* dy, T* dx, int64_t n);

}  // namespace ml::cpu

#include "../../core/cuda_fwd.h"

namespace ml::cuda {

// The same on device pointers, enqueued on `stream`; T is float or __nv_bfloat16 (fp32 math).
template <typename T>
void silu_forward(const T* x, T* y, int64_t n, cudaStream_t stream);

template <typename T>
void silu_backward(const T* x, const T* dy, T* dx, int64_t n, cudaStream_t stream);

}  // namespace ml::cuda
