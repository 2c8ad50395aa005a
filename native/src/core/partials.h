// Deterministic reductions for the CUDA backend: kernels that would otherwise add into one
// place with atomics write one row of partial sums per block instead, and this adds the rows
// in a fixed order. Same inputs, same bits, whatever the scheduling.
#pragma once
#include <cstdint>

#include "cuda_fwd.h"

namespace ml::cuda {

// out[j] = (accumulate ? out[j] : 0) + Σ_{p = 0 .. parts−1} partial[p·n + j]   (p in order)
void sum_partials(const float* partial, int64_t parts, int64_t n, float* out, bool accumulate, cudaStream_t stream,
                  const char* op);

}  // namespace ml::cuda
