#include "../../core/parallel.h"
#include "../silu/silu.h"
#include "swiglu.h"

namespace ml::cpu {

template <typename T>
void swiglu_forward(const T* gate, const T* up, T* y, int64_t n) {
  parallel_for(n, 1 << 14, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) y[i] = silu(gate[i]) * up[i];
  });
}

template <typename T>
void swiglu_backward(const T* gate, const T* up, const T* dy, T* dgate, T* dup, int64_t n) {
  parallel_for(n, 1 << 14, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      dgate[i] = dy[i] * up[i] * silu_grad(gate[i]);
      dup[i] = dy[i] * silu(gate[i]);
    }
  });
}

template void swiglu_forward<float>(const float*, const float*, float*, int64_t);
template void swiglu_forward<double>(const double*, const double*, double*, int64_t);
template void swiglu_backward<float>(const float*, const float*, const float*, float*, float*, int64_t);
template void swiglu_backward<double>(const double*, const double*, const double*, double*, double*, int64_t);

}  // namespace ml::cpu
