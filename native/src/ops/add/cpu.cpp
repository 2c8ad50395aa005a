#include "add.h"

namespace ml::cpu {

template <typename T>
void add_into(const T* x, T* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

template void add_into<float>(const float*, float*, int64_t);
template void add_into<double>(const double*, double*, int64_t);

}  // namespace ml::cpu
