// attention_decode: one new query per sequence against the keys and values cached so far, the
// step generation takes for each token of a causal attention layer (ops/attention's last row).
//   q, out (batch, heads, head_dim);  k, v (batch, kv_heads, head_dim): this token's keys, values
//   k_cache, v_cache (batch, capacity, kv_heads, head_dim);  positions (batch) int32
//   first k[b], v[b] are stored at index positions[b] of the caches (positions[b] < capacity), then
//   out[b,h] = Σ_{j ≤ positions[b]} softmax_j(⟨q[b,h], k_cache[b,j,g]⟩ / sqrt(head_dim)) · v_cache[b,j,g]
//   with g = h / (heads / kv_heads), grouped-query as in ops/attention.
#pragma once
#include <cstdint>

namespace ml::cpu {

struct AttentionDecodeDims {
  int64_t batch, capacity, heads, kv_heads, head_dim;
};

// positions in host memory.
template <typename T>
void attention_decode(const AttentionDecodeDims& dims, const T* q, const T* k, const T* v, T* k_cache, T* v_cache,
                      const int32_t* positions, T* out);

}  // namespace ml::cpu

#include "../../core/cuda_fwd.h"

namespace ml::cuda {

using cpu::AttentionDecodeDims;

// Floats of scratch the CUDA step needs for these dims (0 when the cache is short enough for
// one block per head): the caller owns it, so a CUDA graph that replays the step can keep it.
int64_t attention_decode_scratch(const AttentionDecodeDims& dims);

// The same on device pointers (positions too), enqueued on `stream`: T is float or
// __nv_bfloat16, scores, softmax and sums in fp32; head_dim ≤ 128. The cache is split into
// spans, a block per (sequence, head, span) with an online softmax each, then the spans are
// combined in order (flash-decoding); scratch: attention_decode_scratch(dims) floats.
template <typename T>
void attention_decode(const AttentionDecodeDims& dims, const T* q, const T* k, const T* v, T* k_cache, T* v_cache,
                      const int32_t* positions, T* out, float* scratch, cudaStream_t stream);

}  // namespace ml::cuda
