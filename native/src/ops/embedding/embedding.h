// embedding: rows of a table picked by token id.
//   forward:  out[t, :] = weight[ids[t], :]          ids (T) int32 in [0, vocab), weight (V, D)
//   backward: dweight[ids[t], :] += dout[t, :]        (accumulates)
#pragma once
#include <cstdint>

namespace ml::cpu {

// Throws ml::Error naming the first id outside [0, vocab).
void check_token_ids(const int32_t* ids, int64_t tokens, int64_t vocab);

template <typename T>
void embedding_forward(const int32_t* ids, const T* weight, T* out, int64_t tokens, int64_t dim);

template <typename T>
void embedding_backward(const int32_t* ids, const T* dout, T* dweight, int64_t tokens, int64_t dim);

}  // namespace ml::cpu

#include "../../core/cuda_fwd.h"

namespace ml::cuda {

// The same on device pointers, enqueued on `stream`. ids must already be valid (check them
// with check_token_ids on the host copy before uploading). T is float or __nv_bfloat16;
// the weight gradient is fp32 (master gradients) and sums each row's tokens in token order
// with one writer per element: deterministic, no atomics.
template <typename T>
void embedding_forward(const int32_t* ids, const T* weight, T* out, int64_t tokens, int64_t dim, cudaStream_t stream);

template <typename T>
void embedding_backward(const int32_t* ids, const T* dout, float* dweight, int64_t tokens, int64_t dim,
                        int64_t vocab, cudaStream_t stream);

}  // namespace ml::cuda
