// conv1d_step: one time step of conv1d (ops/conv1d) per sequence, from a window of the
// sequence's previous inputs: the recurrent form of the causal depthwise convolution.
//   window (batch, width − 1, dim): the last width − 1 inputs, oldest first (0 before t = 0)
//   x, y (batch, dim); weight (dim, width); bias (dim) or null
//   pre[b,d] = bias[d] + Σ_{k<width−1} weight[d,k] · window[b,k,d] + weight[d,width−1] · x[b,d]
//   y = silu(pre) if apply_silu else pre;  then window[b] ← (window[b,1:], x[b])
// so that conv1d_forward's output at time t equals this step's when the window holds x[t−w+1..t−1].
#pragma once
#include <cstdint>

namespace ml::cpu {

struct Conv1dStepDims {
  int64_t batch, dim, width;
};

template <typename T>
void conv1d_step(const Conv1dStepDims& dims, T* window, const T* x, const T* weight, const T* bias, T* y,
                 bool apply_silu);

}  // namespace ml::cpu

#include "../../core/cuda_fwd.h"

namespace ml::cuda {

using cpu::Conv1dStepDims;

// The same on device pointers, enqueued on `stream`: window, x, y are T (float or
// __nv_bfloat16), weight and bias fp32 (conv1d's master weights), the sum in fp32; width ≤ 4.
template <typename T>
void conv1d_step(const Conv1dStepDims& dims, T* window, const T* x, const float* weight, const float* bias, T* y,
                 bool apply_silu, cudaStream_t stream);

}  // namespace ml::cuda
