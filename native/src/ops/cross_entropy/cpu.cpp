#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "../../core/fast_exp.h"
#include "../../core/parallel.h"
#include "../gemm/gemm.h"
#include "cross_entropy.h"

namespace ml::cpu {
namespace {

// Vocabulary columns per chunk: keeps the logits buffer near 2M elements whatever the batch.
int64_t chunk_columns(const HeadDims& d) {
  if (d.chunk > 0) return std::min(d.chunk, d.vocab);
  return std::clamp<int64_t>((int64_t{1} << 21) / std::max<int64_t>(d.rows, 1), 256, d.vocab);
}

}  // namespace

template <typename T>
double cross_entropy_forward(const HeadDims& d, const T* h, const T* E, const int32_t* targets, T* lse) {
  const int64_t cols = chunk_columns(d);
  std::vector<T> logits(d.rows * cols);
  std::vector<T> running_max(d.rows, -std::numeric_limits<T>::infinity()), running_sum(d.rows, T(0));
  std::vector<T> target_logit(d.rows, T(0));

  for (int64_t v0 = 0; v0 < d.vocab; v0 += cols) {
    const int64_t vc = std::min(cols, d.vocab - v0);
    gemm<T>(false, true, d.rows, vc, d.dim, T(1), h, d.dim, E + v0 * d.dim, d.dim, T(0), logits.data(), vc);
    parallel_for(d.rows, 8, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        T* row = logits.data() + r * vc;
        const int64_t t = targets[r] - v0;
        if (t >= 0 && t < vc) target_logit[r] = row[t];
        const T chunk_max = *std::max_element(row, row + vc);
        const T m = std::max(running_max[r], chunk_max);
        // exp in place (vectorised), then the sum: a sum loop only vectorises if reassociated.
        for (int64_t j = 0; j < vc; ++j) row[j] = fast_exp(row[j] - m);
        double s = double(running_sum[r]) * std::exp(double(running_max[r] - m));
        for (int64_t j = 0; j < vc; ++j) s += row[j];
        running_max[r] = m;
        running_sum[r] = T(s);
      }
    });
  }
  double total = 0;
  for (int64_t r = 0; r < d.rows; ++r) {
    lse[r] = running_max[r] + std::log(running_sum[r]);
    total += double(lse[r]) - double(target_logit[r]);
  }
  return total / double(d.rows);
}

template <typename T>
void cross_entropy_backward(const HeadDims& d, const T* h, const T* E, const int32_t* targets, const T* lse, T dloss,
                            T* dh, T* dE) {
  const int64_t cols = chunk_columns(d);
  const T scale = dloss / T(d.rows);
  std::vector<T> p(d.rows * cols);
  for (int64_t v0 = 0; v0 < d.vocab; v0 += cols) {
    const int64_t vc = std::min(cols, d.vocab - v0);
    gemm<T>(false, true, d.rows, vc, d.dim, T(1), h, d.dim, E + v0 * d.dim, d.dim, T(0), p.data(), vc);
    parallel_for(d.rows, 8, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        T* row = p.data() + r * vc;
        for (int64_t j = 0; j < vc; ++j) row[j] = fast_exp(row[j] - lse[r]) * scale;
        const int64_t t = targets[r] - v0;
        if (t >= 0 && t < vc) row[t] -= scale;
      }
    });
    gemm<T>(false, false, d.rows, d.dim, vc, T(1), p.data(), vc, E + v0 * d.dim, d.dim, v0 ? T(1) : T(0), dh, d.dim);
    gemm<T>(true, false, vc, d.dim, d.rows, T(1), p.data(), vc, h, d.dim, T(1), dE + v0 * d.dim, d.dim);
  }
}

template <typename T>
double cross_entropy_forward_backward(const HeadDims& d, const T* h, const T* E, const int32_t* targets, T* lse,
                                      T dloss, T* dh, T* dE) {
  const double loss = cross_entropy_forward<T>(d, h, E, targets, lse);
  cross_entropy_backward<T>(d, h, E, targets, lse, dloss, dh, dE);
  return loss;
}

#define ML_INSTANTIATE(T)                                                                                 \
  template double cross_entropy_forward<T>(const HeadDims&, const T*, const T*, const int32_t*, T*);      \
  template void cross_entropy_backward<T>(const HeadDims&, const T*, const T*, const int32_t*, const T*, T, T*, T*); \
  template double cross_entropy_forward_backward<T>(const HeadDims&, const T*, const T*, const int32_t*, T*, T, T*, T*);
ML_INSTANTIATE(float)
ML_INSTANTIATE(double)

}  // namespace ml::cpu
