#include <cmath>
#include <vector>

#include "../../core/parallel.h"
#include "rmsnorm.h"

namespace ml::cpu {

template <typename T>
void rmsnorm_forward(const T* x, const T* residual, const T* weight, T* residual_out, T* y, T* rstd, int64_t rows,
                     int64_t dim, T eps) {
  parallel_for(rows, 16, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const T* xr = x + r * dim;
      T* rr = residual_out + r * dim;
      double sumsq = 0;
      for (int64_t j = 0; j < dim; ++j) {
        rr[j] = residual ? xr[j] + residual[r * dim + j] : xr[j];
        sumsq += double(rr[j]) * rr[j];
      }
      const T s = T(1.0 / std::sqrt(sumsq / dim + eps));
      rstd[r] = s;
      for (int64_t j = 0; j < dim; ++j) y[r * dim + j] = rr[j] * s * weight[j];
    }
  });
}

// Per-chunk partial sums of dweight, added in chunk order: deterministic for a fixed
// thread count, with no atomics.
template <typename T>
void rmsnorm_backward(const T* residual_out, const T* rstd, const T* weight, const T* dy, const T* dresidual_out,
                      T* dx, T* dweight, int64_t rows, int64_t dim) {
  std::vector<std::vector<T>> partial(num_threads(), std::vector<T>(dim, T(0)));
  parallel_for(rows, 16, [&](int64_t begin, int64_t end) {
    std::vector<T>& dw = partial[thread_index()];
    for (int64_t r = begin; r < end; ++r) {
      const T* rr = residual_out + r * dim;
      const T* dyr = dy + r * dim;
      const T s = rstd[r];
      double dot = 0;
      for (int64_t j = 0; j < dim; ++j) {
        const T n = rr[j] * s;
        dot += double(dyr[j] * weight[j]) * n;
        dw[j] += dyr[j] * n;
      }
      const T mean_dot = T(dot / dim);
      for (int64_t j = 0; j < dim; ++j) {
        const T n = rr[j] * s;
        T g = s * (dyr[j] * weight[j] - n * mean_dot);
        if (dresidual_out) g += dresidual_out[r * dim + j];
        dx[r * dim + j] = g;
      }
    }
  });
  for (const auto& dw : partial)
    for (int64_t j = 0; j < dim; ++j) dweight[j] += dw[j];
}

#define ML_INSTANTIATE(T)                                                                                    \
  template void rmsnorm_forward<T>(const T*, const T*, const T*, T*, T*, T*, int64_t, int64_t, T);          \
  template void rmsnorm_backward<T>(const T*, const T*, const T*, const T*, const T*, T*, T*, int64_t, int64_t);
ML_INSTANTIATE(float)
ML_INSTANTIATE(double)

}  // namespace ml::cpu
