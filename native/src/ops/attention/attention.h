// attention: causal multi-head self-attention over already projected queries, keys and values,
// with grouped-query heads (GQA; multi-query when kv_heads is 1).
//   q, out (batch, len, heads, head_dim); k, v (batch, len, kv_heads, head_dim)
//   query head h reads kv head h / (heads / kv_heads)
//   s_ij = ⟨q_i, k_j⟩ / sqrt(head_dim) for j ≤ i;  out_i = Σ_j softmax_j(s_i·)_j v_j
//   lse (batch, heads, len) = log Σ_j e^{s_ij}, kept for the backward
//   backward (D_i = ⟨dout_i, out_i⟩, p_ij = e^{s_ij − lse_i}, ds_ij = p_ij (⟨dout_i, v_j⟩ − D_i)):
//     dq_i = Σ_j ds_ij k_j / sqrt(head_dim);  dk_j = Σ_{heads of its group} Σ_i ds_ij q_i / sqrt(head_dim);
//     dv_j = Σ_{heads of its group} Σ_i p_ij dout_i           (all overwritten)
#pragma once
#include <cstdint>

namespace ml::cpu {

struct AttentionDims {
  int64_t batch, len, heads, kv_heads, head_dim;
};

template <typename T>
void attention_forward(const AttentionDims& dims, const T* q, const T* k, const T* v, T* out, T* lse);

template <typename T>
void attention_backward(const AttentionDims& dims, const T* q, const T* k, const T* v, const T* out, const T* lse,
                        const T* dout, T* dq, T* dk, T* dv);

}  // namespace ml::cpu

#include "../../core/cuda_fwd.h"

namespace ml::cuda {

using cpu::AttentionDims;

// The same on device pointers, enqueued on `stream`: T is float or __nv_bfloat16, scores,
// softmax and every sum in fp32, lse fp32; head_dim ≤ 128. Flash-style: tiles of queries and
// keys in shared memory, an online softmax, never an L × L matrix in device memory; the
// backward recomputes the probabilities from lse. Deterministic: no atomics, every sum in a
// fixed order (dk, dv are owned by one block per key tile, dq by one block per query tile).
template <typename T>
void attention_forward(const AttentionDims& dims, const T* q, const T* k, const T* v, T* out, float* lse,
                       cudaStream_t stream);

template <typename T>
void attention_backward(const AttentionDims& dims, const T* q, const T* k, const T* v, const T* out, const float* lse,
                        const T* dout, T* dq, T* dk, T* dv, cudaStream_t stream);

}  // namespace ml::cuda
