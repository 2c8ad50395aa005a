// argmax: the index of each row's largest value, ties to the lower index: greedy decoding's
// choice, made where the logits are, so a decode step returns one id per sequence instead of
// a row of the vocabulary.
//   x (rows, n) with rows ld apart;  out (rows) int32
#pragma once
#include <cstdint>

namespace ml::cpu {

template <typename T>
void argmax(const T* x, int64_t rows, int64_t n, int64_t ld, int32_t* out);

}  // namespace ml::cpu

#include "../../core/cuda_fwd.h"

namespace ml::cuda {

// The same on device pointers, enqueued on `stream`; T is float. One block per row.
template <typename T>
void argmax(const T* x, int64_t rows, int64_t n, int64_t ld, int32_t* out, cudaStream_t stream);

}  // namespace ml::cuda
