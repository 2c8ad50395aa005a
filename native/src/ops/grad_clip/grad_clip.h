// grad_clip: global-norm gradient clipping over many tensors, as torch's clip_grad_norm_.
//   norm = sqrt(Σ_tensors Σ g²)      (accumulated in double)
//   if max_norm > 0 and norm > max_norm: every g ← g · max_norm / (norm + 1e-6)
// Returns the norm before clipping.
#pragma once
#include <cstdint>
#include <vector>

namespace ml::cpu {

template <typename T>
struct GradSpan {
  T* data;
  int64_t size;
};

template <typename T>
double global_norm(const std::vector<GradSpan<T>>& grads);

template <typename T>
double clip_grad_norm(const std::vector<GradSpan<T>>& grads, double max_norm);

}  // namespace ml::cpu

#include "../../core/cuda_fwd.h"

namespace ml::cuda {

using cpu::GradSpan;

// On device pointers, enqueued on `stream`, with no host synchronisation: results stay on the
// device. Squares are summed in fp64, per block and then across blocks in a fixed order
// (deterministic).
// norm_out[0] = sqrt(Σ g²)
void global_norm(const std::vector<GradSpan<float>>& grads, float* norm_out, cudaStream_t stream);

// norm_out[0] = the norm; coef_out[0] = max_norm / (norm + 1e-6) when max_norm > 0 and
// norm > max_norm, else 1: the grad_scale that cuda::adamw_update applies.
void clip_coefficient(const std::vector<GradSpan<float>>& grads, double max_norm, float* norm_out, float* coef_out,
                      cudaStream_t stream);

// As ml::cpu::clip_grad_norm: writes the norm before clipping to norm_out[0] and scales the
// gradients in place when it exceeds max_norm.
void clip_grad_norm(const std::vector<GradSpan<float>>& grads, double max_norm, float* norm_out, cudaStream_t stream);

}  // namespace ml::cuda
