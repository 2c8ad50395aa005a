#include "../../core/parallel.h"
#include "../gelu/gelu.h"
#include "geglu.h"

namespace ml::cpu {

template <typename T>
void geglu_forward(const T* gate, const T* up, T* y, int64_t n) {
  parallel_for(n, 1 << 14, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) y[i] = gelu(gate[i]) * up[i];
  });
}

template <typename T>
void geglu_backward(const T* gate, const T* up, const T* dy, T* dgate, T* dup, int64_t n) {
  parallel_for(n, 1 << 14, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      dgate[i] = dy[i] * up[i] * gelu_grad(gate[i]);
      dup[i] = dy[i] * gelu(gate[i]);
    }
  });
}

template void geglu_forward<float>(const float*, const float*, float*, int64_t);
template void geglu_forward<double>(const double*, const double*, double*, int64_t);
template void geglu_backward<float>(const float*, const float*, const float*, float*, float*, int64_t);
template void geglu_backward<double>(const double*, const double*, const double*, double*, double*, int64_t);

}  // namespace ml::cpu
