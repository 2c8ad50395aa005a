#include "argmax.h"

namespace ml::cpu {

template <typename T>
void argmax(const T* x, int64_t rows, int64_t n, int64_t ld, int32_t* out) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* row = x + r * ld;
    int64_t best = 0;
    for (int64_t i = 1; i < n; ++i)
      if (row[i] > row[best]) best = i;
    out[r] = int32_t(best);
  }
}

template void argmax<float>(const float*, int64_t, int64_t, int64_t, int32_t*);
template void argmax<double>(const double*, int64_t, int64_t, int64_t, int32_t*);

}  // namespace ml::cpu
