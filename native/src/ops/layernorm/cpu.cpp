#include <cmath>
#include <vector>

#include "../../core/parallel.h"
#include "layernorm.h"

namespace ml::cpu {

template <typename T>
void layernorm_forward(const T* x, const T* residual, const T* weight, const T* bias, T* residual_out, T* y, T* mean,
                       T* rstd, int64_t rows, int64_t dim, T eps) {
  parallel_for(rows, 16, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const T* xr = x + r * dim;
      T* rr = residual_out + r * dim;
      double sum = 0;
      for (int64_t j = 0; j < dim; ++j) {
        rr[j] = residual ? xr[j] + residual[r * dim + j] : xr[j];
        sum += rr[j];
      }
      const double mu = sum / dim;
      double sumsq = 0;  // two passes: the variance of the centred values, not E[r²] − μ²
      for (int64_t j = 0; j < dim; ++j) sumsq += (rr[j] - mu) * (rr[j] - mu);
      const T s = T(1.0 / std::sqrt(sumsq / dim + eps));
      mean[r] = T(mu);
      rstd[r] = s;
      for (int64_t j = 0; j < dim; ++j) y[r * dim + j] = (rr[j] - T(mu)) * s * weight[j] + bias[j];
    }
  });
}

// Per-chunk partial sums of dweight and dbias, added in chunk order: deterministic for a
// fixed thread count, with no atomics.
template <typename T>
void layernorm_backward(const T* residual_out, const T* mean, const T* rstd, const T* weight, const T* dy,
                        const T* dresidual_out, T* dx, T* dweight, T* dbias, int64_t rows, int64_t dim) {
  std::vector<std::vector<T>> partial_w(num_threads(), std::vector<T>(dim, T(0)));
  std::vector<std::vector<T>> partial_b(num_threads(), std::vector<T>(dim, T(0)));
  parallel_for(rows, 16, [&](int64_t begin, int64_t end) {
    std::vector<T>& dw = partial_w[thread_index()];
    std::vector<T>& db = partial_b[thread_index()];
    for (int64_t r = begin; r < end; ++r) {
      const T* rr = residual_out + r * dim;
      const T* dyr = dy + r * dim;
      const T s = rstd[r], mu = mean[r];
      double sum_dn = 0, sum_dn_n = 0;
      for (int64_t j = 0; j < dim; ++j) {
        const T n = (rr[j] - mu) * s, dn = dyr[j] * weight[j];
        sum_dn += dn;
        sum_dn_n += double(dn) * n;
        dw[j] += dyr[j] * n;
        db[j] += dyr[j];
      }
      const T mean_dn = T(sum_dn / dim), mean_dn_n = T(sum_dn_n / dim);
      for (int64_t j = 0; j < dim; ++j) {
        const T n = (rr[j] - mu) * s;
        T g = s * (dyr[j] * weight[j] - mean_dn - n * mean_dn_n);
        if (dresidual_out) g += dresidual_out[r * dim + j];
        dx[r * dim + j] = g;
      }
    }
  });
  for (size_t t = 0; t < partial_w.size(); ++t)
    for (int64_t j = 0; j < dim; ++j) {
      dweight[j] += partial_w[t][j];
      dbias[j] += partial_b[t][j];
    }
}

#define ML_INSTANTIATE(T)                                                                                      \
  template void layernorm_forward<T>(const T*, const T*, const T*, const T*, T*, T*, T*, T*, int64_t, int64_t, \
                                     T);                                                                      \
  template void layernorm_backward<T>(const T*, const T*, const T*, const T*, const T*, const T*, T*, T*, T*,  \
                                      int64_t, int64_t);
ML_INSTANTIATE(float)
ML_INSTANTIATE(double)

}  // namespace ml::cpu
