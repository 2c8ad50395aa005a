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
