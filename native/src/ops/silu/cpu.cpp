#include "../../core/parallel.h"
#include "silu.h"

namespace ml::cpu {

template <typename T>
void silu_forward(const T* x, T* y, int64_t n) {
  parallel_for(n, 1 << 14, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) y[i] = silu(x[i]);
  });
}

template <typename T>
void silu_backward(const T* x, const T* dy, T* dx, int64_t n) {
  parallel_for(n, 1 << 14, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) dx[i] = dy[i] * silu_grad(x[i]);
  });
}

template void silu_forward<float>(const float*, float*, int64_t);
template void silu_forward<double>(const double*, double*, int64_t);
template void silu_backward<float>(const float*, const float*, float*, int64_t);
template void silu_backward<double>(const double*, const double*, double*, int64_t);

}  // namespace ml::cpu
