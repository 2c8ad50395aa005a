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

// Σ g² over the spans, in double (global_norm's sum before its square root): expert parallel's
// ranks each sum their own experts' squares and add them up (train/step.h).
template <typename T>
double sum_squares(const std::vector<GradSpan<T>>& grads);

template <typename T>
double global_norm(const std::vector<GradSpan<T>>& grads);

template <typename T>
double clip_grad_norm(const std::vector<GradSpan<T>>& grads, double max_norm);

// The coefficient a training step's optimizer multiplies the gradients by, leaving them as
// they are (cuda::adamw_update applies it; ml::CpuBackend::adamw too):
//   norm = scale · sqrt(Σ g² + elsewhere)
//                                  the norm of the gradients the optimizer sees: scale = 1/K
//                                  averages K accumulated micro-batches (1 for one batch);
//                                  elsewhere = Σ g² of gradients outside the spans (0 but
//                                  for expert parallel: the ranks' own expert blocks)
//   coef = scale · (max_norm / (norm + 1e-6) if max_norm > 0 and norm > max_norm, else 1)
//   coef = NaN when norm or *loss (loss may be null) is not finite: the optimizer then
//          changes nothing, so a step that overflowed is skipped rather than applied.
template <typename T>
void clip_coefficient(const std::vector<GradSpan<T>>& grads, double max_norm, double scale, const double* loss,
                      double* norm_out, double* coef_out, double elsewhere = 0);

}  // namespace ml::cpu

#include "../../core/cuda_fwd.h"

namespace ml::cuda {

using cpu::GradSpan;

// On device pointers, enqueued on `stream`, with no host synchronisation: results stay on the
// device. Squares are summed in fp64, per block and then across blocks in a fixed order
// (deterministic).
// norm_out[0] = sqrt(Σ g²)
void global_norm(const std::vector<GradSpan<float>>& grads, float* norm_out, cudaStream_t stream);

// out[0] = Σ g², in double, in the same fixed order.
void sum_squares(const std::vector<GradSpan<float>>& grads, double* out, cudaStream_t stream);

// ml::cpu::clip_coefficient's norm_out[0] and coef_out[0] (the grad_scale that
// cuda::adamw_update applies), with loss a device pointer (or null), read on the device.
void clip_coefficient(const std::vector<GradSpan<float>>& grads, double max_norm, double scale, const float* loss,
                      float* norm_out, float* coef_out, cudaStream_t stream, double elsewhere = 0);

// As ml::cpu::clip_grad_norm: writes the norm before clipping to norm_out[0] and scales the
// gradients in place when it exceeds max_norm.
void clip_grad_norm(const std::vector<GradSpan<float>>& grads, double max_norm, float* norm_out, cudaStream_t stream);

}  // namespace ml::cuda
