// rope: rotary position embeddings (Su et al.) on the heads of queries or keys, in the
// half-split convention of GPT-NeoX and HF Llama's rotate_half.
//   x, y (batch, len, heads, dim), dim even; row t of sequence b sits at position t, or at
//   offsets[b] + t when offsets (batch, int32) is given (generation: each sequence's next token).
//   for i < dim/2:  θ = t · base^(−2i/dim),  (a, b) = (x_i, x_{i+dim/2})
//                   y_i = a cos θ − b sin θ,  y_{i+dim/2} = a sin θ + b cos θ
//   backward: the inverse rotation (θ → −θ) of dy gives dx.
// y may be x (in place). Angles are made in double: at positions in the thousands a float
// angle is off by a noticeable fraction of a radian.
#pragma once
#include <cstdint>

namespace ml::cpu {

struct RopeDims {
  int64_t batch, len, heads, dim;
  const int32_t* offsets = nullptr;  // host memory for cpu::, device memory for cuda::
};

template <typename T>
void rope_forward(const RopeDims& dims, double base, const T* x, T* y);

template <typename T>
void rope_backward(const RopeDims& dims, double base, const T* dy, T* dx);

}  // namespace ml::cpu

#include "../../core/cuda_fwd.h"

namespace ml::cuda {

using cpu::RopeDims;

// The same on device pointers, enqueued on `stream`; T is float or __nv_bfloat16 (the
// rotation in fp32 with angles in double).
template <typename T>
void rope_forward(const RopeDims& dims, double base, const T* x, T* y, cudaStream_t stream);

template <typename T>
void rope_backward(const RopeDims& dims, double base, const T* dy, T* dx, cudaStream_t stream);

}  // namespace ml::cuda
