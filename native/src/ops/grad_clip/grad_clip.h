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
