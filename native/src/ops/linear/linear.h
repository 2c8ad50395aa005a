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

#include "../../core/cuda_fwd.h"

namespace ml::cuda {

// The same on device pointers through cuBLASLt, enqueued on `stream`. x, weight, y, dy, dx
// are T (float or __nv_bfloat16: the compute copy of the weights); bias and the parameter
// gradients dweight, dbias are fp32 (master weights). Products accumulate in fp32; dbias
// sums rows through per-block partials in a fixed order (deterministic).
template <typename T>
void linear_forward(const T* x, const T* weight, const float* bias, T* y, int64_t rows, int64_t in, int64_t out,
                    cudaStream_t stream);

template <typename T>
void linear_backward(const T* x, const T* weight, const T* dy, T* dx, float* dweight, float* dbias, int64_t rows,
                     int64_t in, int64_t out, bool accumulate_dx, cudaStream_t stream);

}  // namespace ml::cuda
