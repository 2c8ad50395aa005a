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

// Both at once, for training: the loss is the model's last op, so its gradient is known as soon
// as its logits are. The same results as cross_entropy_forward then cross_entropy_backward.
template <typename T>
double cross_entropy_forward_backward(const HeadDims& dims, const T* h, const T* embedding, const int32_t* targets,
                                      T* lse, T dloss, T* dh, T* dembedding);

}  // namespace ml::cpu

#include "../../core/cuda_fwd.h"

namespace ml::cuda {

using cpu::HeadDims;

// The same on device pointers, enqueued on `stream`: h and E are T (float or
// __nv_bfloat16), logits are made in fp32 one vocabulary chunk at a time (default ~32M
// logits per chunk) and never kept whole. The mean loss is written to loss[0] (fp32, on the
// device: no host synchronisation), summed in fp64 in a fixed order. dh (fp32) is
// overwritten; dE (fp32, the master gradient of the tied embedding) accumulates.
template <typename T>
void cross_entropy_forward(const HeadDims& dims, const T* h, const T* embedding, const int32_t* targets, float* lse,
                           float* loss, cudaStream_t stream);

template <typename T>
void cross_entropy_backward(const HeadDims& dims, const T* h, const T* embedding, const int32_t* targets,
                            const float* lse, float dloss, float* dh, float* dembedding, cudaStream_t stream);

// Both at once (training): the logits are made a chunk of rows at a time over the whole
// vocabulary (as many logits as a chunk of the other two: dims.chunk · rows), so each row's
// softmax is final within its chunk and turns into its gradient at once: one product for the
// logits where the forward and the backward make them twice.
template <typename T>
void cross_entropy_forward_backward(const HeadDims& dims, const T* h, const T* embedding, const int32_t* targets,
                                    float* lse, float* loss, float dloss, float* dh, float* dembedding,
                                    cudaStream_t stream);

}  // namespace ml::cuda
