#include "../../core/parallel.h"
#include "../gemm/gemm.h"
#include "linear.h"

namespace ml::cpu {

template <typename T>
void linear_forward(const T* x, const T* weight, const T* bias, T* y, int64_t rows, int64_t in, int64_t out) {
  gemm<T>(false, true, rows, out, in, T(1), x, in, weight, in, T(0), y, out);
  if (!bias) return;
  parallel_for(rows, 64, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r)
      for (int64_t j = 0; j < out; ++j) y[r * out + j] += bias[j];
  });
}

template <typename T>
void linear_backward(const T* x, const T* weight, const T* dy, T* dx, T* dweight, T* dbias, int64_t rows, int64_t in,
                     int64_t out, bool accumulate_dx) {
  if (dx) gemm<T>(false, false, rows, in, out, T(1), dy, out, weight, in, accumulate_dx ? T(1) : T(0), dx, in);
  gemm<T>(true, false, out, in, rows, T(1), dy, out, x, in, T(1), dweight, in);
  if (!dbias) return;
  parallel_for(out, 16, [&](int64_t begin, int64_t end) {
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = begin; j < end; ++j) dbias[j] += dy[r * out + j];
  });
}

#define ML_INSTANTIATE(T)                                                                                 \
  template void linear_forward<T>(const T*, const T*, const T*, T*, int64_t, int64_t, int64_t);            \
  template void linear_backward<T>(const T*, const T*, const T*, T*, T*, T*, int64_t, int64_t, int64_t, bool);
ML_INSTANTIATE(float)
ML_INSTANTIATE(double)

}  // namespace ml::cpu
