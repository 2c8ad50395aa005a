#include <cmath>

#include "../../core/parallel.h"
#include "rope.h"

namespace ml::cpu {
namespace {

// Rotates every head of every row by its position's angles; sign −1 rotates back.
template <typename T>
void rotate(const RopeDims& d, double base, const T* x, T* y, double sign) {
  const int64_t half = d.dim / 2;
  parallel_for(d.batch * d.len, 16, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const double t = double(row % d.len + (d.offsets ? d.offsets[row / d.len] : 0));
      for (int64_t i = 0; i < half; ++i) {
        const double theta = sign * t * std::pow(base, -2.0 * double(i) / double(d.dim));
        const double c = std::cos(theta), s = std::sin(theta);
        for (int64_t h = 0; h < d.heads; ++h) {
          const int64_t at = (row * d.heads + h) * d.dim + i;
          const double a = double(x[at]), b = double(x[at + half]);
          y[at] = T(a * c - b * s);
          y[at + half] = T(a * s + b * c);
        }
      }
    }
  });
}

}  // namespace

template <typename T>
void rope_forward(const RopeDims& dims, double base, const T* x, T* y) {
  rotate(dims, base, x, y, 1.0);
}

template <typename T>
void rope_backward(const RopeDims& dims, double base, const T* dy, T* dx) {
  rotate(dims, base, dy, dx, -1.0);
}

#define ML_INSTANTIATE(T)                                                           \
  template void rope_forward<T>(const RopeDims&, double, const T*, T*);            \
  template void rope_backward<T>(const RopeDims&, double, const T*, T*);
ML_INSTANTIATE(float)
ML_INSTANTIATE(double)

}  // namespace ml::cpu
