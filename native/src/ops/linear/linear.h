// linear: y = x Wᵀ + b over rows.   x (M, in), W (out, in), b (out) or null, y (M, out).
//   backward: dx = dy W   (overwrites, or adds when accumulate_dx)
//             dW += dyᵀ x,  db += Σ_rows dy   (parameter gradients accumulate)
#pragma once
#include <cstdint>

namespace ml::cpu {

template <typename T>
void linear_forward(const T* x, const T* weight, const T* bias, T* y, int64_t rows, int64_t in, int64_t out);

// dx may be null (input needs no gradient); db may be null when there is no bias.
template <typename T>
void linear_backward(const T* x, const T* weight, const T* dy, T* dx, T* dweight, T* dbias, int64_t rows, int64_t in,
                     int64_t out, bool accumulate_dx = false);

}  // namespace ml::cpu
