#include "../../core/parallel.h"
#include "gelu.h"

namespace ml::cpu {

template <typename T>
void gelu_forward(const T* x, T* y, int64_t n) {
  parallel_for(n, 1 << 14, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) y[i] = gelu(x[i]);
  });
}

template <typename T>
void gelu_backward(const T* x, const T* dy, T* dx, int64_t n) {
  parallel_for(n, 1 << 14, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) dx[i] = dy[i] * gelu_grad(x[i]);
  });
}

template void gelu_forward<float>(const float*, float*, int64_t);
template void gelu_forward<double>(const double*, double*, int64_t);
template void gelu_backward<float>(const float*, const float*, float*, int64_t);
template void gelu_backward<double>(const double*, const double*, double*, int64_t);

}  // namespace ml::cpu
