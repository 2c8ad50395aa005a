#include <algorithm>
#include <cmath>
#include <vector>

#include "../../core/error.h"
#include "../../core/parallel.h"
#include "attention_decode.h"

namespace ml::cpu {

template <typename T>
void attention_decode(const AttentionDecodeDims& d, const T* q, const T* k, const T* v, T* k_cache, T* v_cache,
                      const int32_t* positions, T* out) {
  const int64_t dh = d.head_dim, kv_row = d.kv_heads * dh, group = d.heads / d.kv_heads;
  for (int64_t b = 0; b < d.batch; ++b) {
    ML_CHECK(positions[b] >= 0 && positions[b] < d.capacity, "attention_decode: position ", positions[b],
             " of sequence ", b, " is outside the cache of ", d.capacity);
    std::copy(k + b * kv_row, k + (b + 1) * kv_row, k_cache + (b * d.capacity + positions[b]) * kv_row);
    std::copy(v + b * kv_row, v + (b + 1) * kv_row, v_cache + (b * d.capacity + positions[b]) * kv_row);
  }
  const T scale = T(1) / std::sqrt(T(dh));
  parallel_for(d.batch * d.heads, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> p;
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = i / d.heads, h = i % d.heads, g = h / group, n = int64_t(positions[b]) + 1;
      const T* qi = q + i * dh;
      p.assign(size_t(n), T(0));
      T top = -INFINITY;
      for (int64_t j = 0; j < n; ++j) {
        const T* kj = k_cache + ((b * d.capacity + j) * d.kv_heads + g) * dh;
        T s = 0;
        for (int64_t e = 0; e < dh; ++e) s += qi[e] * kj[e];
        p[size_t(j)] = s * scale;
        top = std::max(top, p[size_t(j)]);
      }
      T sum = 0;
      for (auto& x : p) sum += (x = std::exp(x - top));
      T* o = out + i * dh;
      std::fill(o, o + dh, T(0));
      for (int64_t j = 0; j < n; ++j) {
        const T* vj = v_cache + ((b * d.capacity + j) * d.kv_heads + g) * dh;
        const T w = p[size_t(j)] / sum;
        for (int64_t e = 0; e < dh; ++e) o[e] += w * vj[e];
      }
    }
  });
}

#define ML_INSTANTIATE(T)                                                                                     \
  template void attention_decode<T>(const AttentionDecodeDims&, const T*, const T*, const T*, T*, T*, \
                                    const int32_t*, T*);
ML_INSTANTIATE(float)
ML_INSTANTIATE(double)

}  // namespace ml::cpu
