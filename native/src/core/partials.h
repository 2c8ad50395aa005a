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

// Warps per block for a backward kernel whose warps each keep `rows_per_warp` rows of `dim`
// floats in shared memory: `most`, or as many as fit a block's opt-in shared memory when the
// rows are wide (a 4096-wide LayerNorm fits 7 of its 8). Fails, naming `op`, when not even one fits.
int shared_row_warps(int64_t dim, int rows_per_warp, int most, const char* op);

}  // namespace ml::cuda
