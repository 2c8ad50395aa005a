#include "a_log.h"

#include <cmath>

namespace ml::cpu {

template <typename T>
void a_log_forward(const T* a_log, T* A, int64_t n) {
  for (int64_t i = 0; i < n; ++i) A[i] = -std::exp(a_log[i]);
}

template <typename T>
void a_log_backward(const T* A, const T* dA, T* da_log, int64_t n) {
  for (int64_t i = 0; i < n; ++i) da_log[i] += dA[i] * A[i];
}

template void a_log_forward<float>(const float*, float*, int64_t);
template void a_log_forward<double>(const double*, double*, int64_t);
template void a_log_backward<float>(const float*, const float*, float*, int64_t);
template void a_log_backward<double>(const double*, const double*, double*, int64_t);

}  // namespace ml::cpu
