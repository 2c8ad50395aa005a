// adamw: Adam with decoupled weight decay (Loshchilov & Hutter), as torch.optim.AdamW.
//   p ← p · (1 − lr·wd)
//   m ← β1 m + (1 − β1) g;   v ← β2 v + (1 − β2) g²
//   p ← p − (lr / (1 − β1^step)) · m / (sqrt(v) / sqrt(1 − β2^step) + eps)
// step counts from 1. Weight decay is chosen per tensor by the caller (0 for norms, biases,
// A_log and D).
#pragma once
#include <cstdint>

namespace ml::cpu {

struct AdamWParams {
  double lr, beta1, beta2, eps, weight_decay;
  int64_t step;
};

template <typename T>
void adamw_update(const AdamWParams& params, T* param, const T* grad, T* m, T* v, int64_t n);

}  // namespace ml::cpu

#include <vector>

#include "../../core/cuda_fwd.h"

namespace ml::cuda {

using cpu::AdamWParams;

// One parameter tensor of a multi-tensor step: fp32 master weights, gradient and moments,
// its own weight decay, and optionally a bf16 compute copy refreshed from the new weights.
struct AdamWTensor {
  float* param;
  const float* grad;
  float* m;
  float* v;
  int64_t size;
  float weight_decay;
  __nv_bfloat16* param_bf16 = nullptr;
};

// The CPU reference's update for every tensor, in a few launches (up to 32 tensors each);
// params.weight_decay is ignored in favour of each tensor's. grad_scale (device, may be
// null) multiplies every gradient first: pass the coefficient from clip_coefficient and
// clipping costs no pass over the gradients and no host synchronisation. A grad_scale that
// is not finite (clip_coefficient's mark of a non-finite loss or norm) skips the update:
// no weight, moment or compute copy changes.
void adamw_update(const AdamWParams& params, const std::vector<AdamWTensor>& tensors, const float* grad_scale,
                  cudaStream_t stream);

// One tensor, as ml::cpu::adamw_update (weight decay from params).
void adamw_update(const AdamWParams& params, float* param, const float* grad, float* m, float* v, int64_t n,
                  cudaStream_t stream);

}  // namespace ml::cuda
