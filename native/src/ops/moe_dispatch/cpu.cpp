#include <algorithm>

#include "moe_dispatch.h"

namespace ml::cpu {

void segment_offsets(const int64_t* counts, int64_t experts, int64_t segment, int64_t* offsets) {
  int64_t run = 0;
  for (int64_t e = 0; e < experts; ++e) {
    offsets[e] = run;
    run += (counts[e] + segment - 1) / segment * segment;
  }
}

void place(const int32_t* expert, const uint8_t* kept, const int32_t* rank, const int64_t* offsets, int64_t capacity,
           int64_t assignments, int64_t slots, int32_t* slot, int32_t* source) {
  std::fill_n(source, slots, -1);
  for (int64_t a = 0; a < assignments; ++a) {
    if (!kept[a]) {
      slot[a] = -1;
      continue;
    }
    const int64_t s = (offsets ? offsets[expert[a]] : expert[a] * capacity) + rank[a];
    slot[a] = int32_t(s);
    source[s] = int32_t(a);
  }
}

template <typename T>
void gather(const T* src, const T* scale, const int32_t* source, int64_t slots, int64_t tokens, int64_t d, T* dst) {
  for (int64_t s = 0; s < slots; ++s) {
    const int32_t a = source[s];
    T* out = dst + s * d;
    if (a < 0) {
      std::fill_n(out, d, T(0));
      continue;
    }
    const T* in = src + (a % tokens) * d;
    const T g = scale ? scale[a] : T(1);
    for (int64_t j = 0; j < d; ++j) out[j] = g * in[j];
  }
}

template <typename T>
void combine(const T* src, const T* scale, const int32_t* slot, int64_t tokens, int64_t top_k, int64_t d, T* dst) {
  std::fill_n(dst, tokens * d, T(0));
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t c = 0; c < top_k; ++c) {
      const int64_t a = c * tokens + t;
      if (slot[a] < 0) continue;
      const T* in = src + int64_t(slot[a]) * d;
      const T g = scale ? scale[a] : T(1);
      for (int64_t j = 0; j < d; ++j) dst[t * d + j] += g * in[j];
    }
}

template <typename T>
void gate_grad(const T* dy, const T* out, const int32_t* slot, int64_t tokens, int64_t assignments, int64_t d,
               T* dgates) {
  for (int64_t a = 0; a < assignments; ++a) {
    double sum = 0;
    if (slot[a] >= 0) {
      const T* g = dy + (a % tokens) * d;
      const T* o = out + int64_t(slot[a]) * d;
      for (int64_t j = 0; j < d; ++j) sum += double(g[j]) * double(o[j]);
    }
    dgates[a] = T(sum);
  }
}

#define ML_INSTANTIATE(T)                                                                                   \
  template void gather<T>(const T*, const T*, const int32_t*, int64_t, int64_t, int64_t, T*);              \
  template void combine<T>(const T*, const T*, const int32_t*, int64_t, int64_t, int64_t, T*);             \
  template void gate_grad<T>(const T*, const T*, const int32_t*, int64_t, int64_t, int64_t, T*);
ML_INSTANTIATE(float)
ML_INSTANTIATE(double)

}  // namespace ml::cpu
