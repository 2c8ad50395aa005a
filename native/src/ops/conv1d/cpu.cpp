#include <algorithm>
#include <vector>

#include "../../core/parallel.h"
#include "../silu/silu.h"
#include "conv1d.h"

namespace ml::cpu {
namespace {

// Each task owns a contiguous range of channels, so every output and every weight
// gradient has exactly one writer.
constexpr int64_t kChannelGrain = 8;

template <typename T>
T conv_at(const Conv1dDims& d, const T* x, const T* weight, const T* bias, int64_t b, int64_t t, int64_t c) {
  T acc = bias ? bias[c] : T(0);
  for (int64_t k = 0; k < d.width; ++k) {
    const int64_t src = t - (d.width - 1) + k;
    if (src >= 0) acc += weight[c * d.width + k] * x[(b * d.len + src) * d.dim + c];
  }
  return acc;
}

}  // namespace

template <typename T>
void conv1d_forward(const Conv1dDims& d, const T* x, const T* weight, const T* bias, T* y, bool apply_silu) {
  parallel_for(d.dim, kChannelGrain, [&](int64_t c0, int64_t c1) {
    for (int64_t b = 0; b < d.batch; ++b)
      for (int64_t t = 0; t < d.len; ++t)
        for (int64_t c = c0; c < c1; ++c) {
          const T pre = conv_at(d, x, weight, bias, b, t, c);
          y[(b * d.len + t) * d.dim + c] = apply_silu ? silu(pre) : pre;
        }
  });
}

template <typename T>
void conv1d_backward(const Conv1dDims& d, const T* x, const T* weight, const T* bias, const T* dy, T* dx, T* dweight,
                     T* dbias, bool apply_silu) {
  parallel_for(d.dim, kChannelGrain, [&](int64_t c0, int64_t c1) {
    const int64_t n = c1 - c0;
    std::vector<T> dpre(n);
    for (int64_t b = 0; b < d.batch; ++b) {
      for (int64_t t = 0; t < d.len; ++t)
        for (int64_t c = c0; c < c1; ++c) dx[(b * d.len + t) * d.dim + c] = T(0);
      for (int64_t t = 0; t < d.len; ++t) {
        for (int64_t c = c0; c < c1; ++c) {
          const int64_t at = (b * d.len + t) * d.dim + c;
          dpre[c - c0] = apply_silu ? dy[at] * silu_grad(conv_at(d, x, weight, bias, b, t, c)) : dy[at];
        }
        for (int64_t k = 0; k < d.width; ++k) {
          const int64_t src = t - (d.width - 1) + k;
          if (src < 0) continue;
          for (int64_t c = c0; c < c1; ++c) {
            const int64_t at = (b * d.len + src) * d.dim + c;
            dx[at] += weight[c * d.width + k] * dpre[c - c0];
            dweight[c * d.width + k] += dpre[c - c0] * x[at];
          }
        }
        if (dbias)
          for (int64_t c = c0; c < c1; ++c) dbias[c] += dpre[c - c0];
      }
    }
  });
}

#define ML_INSTANTIATE(T)                                                                                     \
  template void conv1d_forward<T>(const Conv1dDims&, const T*, const T*, const T*, T*, bool);                  \
  template void conv1d_backward<T>(const Conv1dDims&, const T*, const T*, const T*, const T*, T*, T*, T*, bool);
ML_INSTANTIATE(float)
ML_INSTANTIATE(double)

}  // namespace ml::cpu
