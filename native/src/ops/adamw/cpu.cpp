#include <cmath>

#include "../../core/parallel.h"
#include "adamw.h"

namespace ml::cpu {

template <typename T>
void adamw_update(const AdamWParams& o, T* param, const T* grad, T* m, T* v, int64_t n) {
  const T decay = T(1.0 - o.lr * o.weight_decay);
  const T b1 = T(o.beta1), b2 = T(o.beta2), eps = T(o.eps);
  const T step_size = T(o.lr / (1.0 - std::pow(o.beta1, double(o.step))));
  const T bc2_sqrt = T(std::sqrt(1.0 - std::pow(o.beta2, double(o.step))));
  parallel_for(n, 1 << 14, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const T g = grad[i];
      m[i] = b1 * m[i] + (T(1) - b1) * g;
      v[i] = b2 * v[i] + (T(1) - b2) * g * g;
      param[i] = param[i] * decay - step_size * m[i] / (std::sqrt(v[i]) / bc2_sqrt + eps);
    }
  });
}

template void adamw_update<float>(const AdamWParams&, float*, const float*, float*, float*, int64_t);
template void adamw_update<double>(const AdamWParams&, double*, const double*, double*, double*, int64_t);

}  // namespace ml::cpu
