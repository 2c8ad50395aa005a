#include "cast.h"

#include <algorithm>

namespace ml::cpu {

template <typename From, typename To>
void cast(const From* x, To* y, int64_t n) {
  std::transform(x, x + n, y, [](From v) { return To(v); });
}

template void cast<float, double>(const float*, double*, int64_t);
template void cast<double, float>(const double*, float*, int64_t);

}  // namespace ml::cpu
