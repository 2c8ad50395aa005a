// cross_entropy fused with the tied LM head: logits = h · Eᵀ are made one vocabulary chunk
// at a time and never kept whole; only the per-row log-sum-exp is saved for the backward.
//   h (rows, dim); E (vocab, dim); targets (rows) int32 in [0, vocab)
//   loss    = (1/rows) Σ_r [ logsumexp_v(logits[r, v]) − logits[r, targets[r]] ]
//   backward: p = softmax(logits) − onehot(target), scaled by dloss/rows;
//             dh = p · E  (overwritten);  dE += pᵀ · h  (accumulates)
#pragma once
#include <cstdint>

namespace ml::cpu {

struct HeadDims {
  int64_t rows, dim, vocab;
  int64_t chunk = 0;  // vocabulary columns per chunk; 0 picks ~2M logits per chunk
};

// Returns the mean loss; fills lse (rows) for the backward.
template <typename T>
double cross_entropy_forward(const HeadDims& dims, const T* h, const T* embedding, const int32_t* targets, T* lse);

template <typename T>
void cross_entropy_backward(const HeadDims& dims, const T* h, const T* embedding, const int32_t* targets,
                            const T* lse, T dloss, T* dh, T* dembedding);

}  // namespace ml::cpu
