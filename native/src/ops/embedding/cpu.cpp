#include <algorithm>

#include "../../core/error.h"
#include "../../core/parallel.h"
#include "embedding.h"

namespace ml::cpu {

void check_token_ids(const int32_t* ids, int64_t tokens, int64_t vocab) {
  for (int64_t t = 0; t < tokens; ++t)
    ML_CHECK(ids[t] >= 0 && ids[t] < vocab, "token id ", ids[t], " at position ", t, " of the batch is outside the vocabulary [0, ",
             vocab, ")");
}

template <typename T>
void embedding_forward(const int32_t* ids, const T* weight, T* out, int64_t tokens, int64_t dim) {
  parallel_for(tokens, 64, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) std::copy_n(weight + ids[t] * dim, dim, out + t * dim);
  });
}

// Threads split the embedding dimension, so each table entry has one writer: no races,
// and the summation order per entry is the token order (deterministic).
template <typename T>
void embedding_backward(const int32_t* ids, const T* dout, T* dweight, int64_t tokens, int64_t dim) {
  parallel_for(dim, 16, [&](int64_t begin, int64_t end) {
    for (int64_t t = 0; t < tokens; ++t) {
      T* row = dweight + ids[t] * dim;
      const T* src = dout + t * dim;
      for (int64_t j = begin; j < end; ++j) row[j] += src[j];
    }
  });
}

#define ML_INSTANTIATE(T)                                                            \
  template void embedding_forward<T>(const int32_t*, const T*, T*, int64_t, int64_t); \
  template void embedding_backward<T>(const int32_t*, const T*, T*, int64_t, int64_t);
ML_INSTANTIATE(float)
ML_INSTANTIATE(double)

}  // namespace ml::cpu
