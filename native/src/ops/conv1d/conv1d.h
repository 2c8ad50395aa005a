// conv1d: causal depthwise convolution over time, optionally followed by SiLU.
//   x, y (batch, len, dim); weight (dim, width); bias (dim) or null.
//   pre[b,t,d] = bias[d] + Σ_k weight[d,k] · x[b, t − (width−1) + k, d]   (x before t=0 is 0)
//   y = silu(pre) if apply_silu else pre
//   backward recomputes pre from x; dx overwritten; dweight, dbias accumulate.
#pragma once
#include <cstdint>

namespace ml::cpu {

struct Conv1dDims {
  int64_t batch, len, dim, width;
};

template <typename T>
void conv1d_forward(const Conv1dDims& dims, const T* x, const T* weight, const T* bias, T* y, bool apply_silu);

template <typename T>
void conv1d_backward(const Conv1dDims& dims, const T* x, const T* weight, const T* bias, const T* dy, T* dx,
                     T* dweight, T* dbias, bool apply_silu);

}  // namespace ml::cpu

#include "../../core/cuda_fwd.h"

namespace ml::cuda {

using cpu::Conv1dDims;

// The same on device pointers, enqueued on `stream`; width ≤ 4 (Mamba's d_conv). x, y, dy,
// dx are T (float or __nv_bfloat16); weight, bias, dweight, dbias are fp32. The parameter
// gradients accumulate through per-block partials added in a fixed order (deterministic).
template <typename T>
void conv1d_forward(const Conv1dDims& dims, const T* x, const float* weight, const float* bias, T* y,
                    bool apply_silu, cudaStream_t stream);

template <typename T>
void conv1d_backward(const Conv1dDims& dims, const T* x, const float* weight, const float* bias, const T* dy, T* dx,
                     float* dweight, float* dbias, bool apply_silu, cudaStream_t stream);

}  // namespace ml::cuda
