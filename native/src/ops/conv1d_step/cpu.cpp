#include "../../core/parallel.h"
#include "../silu/silu.h"
#include "conv1d_step.h"

namespace ml::cpu {

// Summed in conv1d_forward's order (bias, then the oldest input first), so a step gives
// the parallel convolution's value up to rounding.
template <typename T>
void conv1d_step(const Conv1dStepDims& d, T* window, const T* x, const T* weight, const T* bias, T* y,
                 bool apply_silu) {
  const int64_t w = d.width - 1;
  parallel_for(d.batch * d.dim, 64, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = i / d.dim, c = i % d.dim;
      T* past = window + b * w * d.dim + c;
      T acc = bias ? bias[c] : T(0);
      for (int64_t k = 0; k < w; ++k) acc += weight[c * d.width + k] * past[k * d.dim];
      acc += weight[c * d.width + w] * x[i];
      for (int64_t k = 0; k + 1 < w; ++k) past[k * d.dim] = past[(k + 1) * d.dim];
      if (w > 0) past[(w - 1) * d.dim] = x[i];
      y[i] = apply_silu ? silu(acc) : acc;
    }
  });
}

#define ML_INSTANTIATE(T) \
  template void conv1d_step<T>(const Conv1dStepDims&, T*, const T*, const T*, const T*, T*, bool);
ML_INSTANTIATE(float)
ML_INSTANTIATE(double)

}  // namespace ml::cpu
