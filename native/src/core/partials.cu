#include <algorithm>

#include "cuda_check.h"
#include "cuda_math.cuh"
#include "partials.h"

namespace ml::cuda {
namespace {

constexpr int kColumns = 32, kGroups = 32;  // a block: 32 columns × 32 groups of parts

// Thread (g, c) sums parts g, g + kGroups, … of column c in order; then the groups' sums are
// added in group order. The order is fixed, so the result is too; many parts are summed at
// once rather than one after another by a single thread.
__global__ void sum_partials_kernel(const float* __restrict__ partial, int64_t parts, int64_t n,
                                    float* __restrict__ out, bool accumulate) {
  __shared__ float group_sums[kGroups][kColumns + 1];
  const int c = threadIdx.x % kColumns, g = threadIdx.x / kColumns;
  const int64_t j = int64_t(blockIdx.x) * kColumns + c;
  float s = 0.f;
  if (j < n)
    for (int64_t p = g; p < parts; p += kGroups) s += partial[p * n + j];
  group_sums[g][c] = s;
  __syncthreads();
  if (g == 0 && j < n) {
    float total = accumulate ? out[j] : 0.f;
    for (int k = 0; k < kGroups; ++k) total += group_sums[k][c];
    out[j] = total;
  }
}

}  // namespace

void sum_partials(const float* partial, int64_t parts, int64_t n, float* out, bool accumulate, cudaStream_t stream,
                  const char* op) {
  if (n <= 0) return;
  const int64_t blocks = (n + kColumns - 1) / kColumns;
  ML_CHECK(blocks <= 0x7fffffff, op, ": ", n, " partial sums exceed one launch");
  sum_partials_kernel<<<unsigned(blocks), kColumns * kGroups, 0, stream>>>(partial, parts, n, out, accumulate);
  ML_CUDA_CHECK_LAUNCH(op);
}

int shared_row_warps(int64_t dim, int rows_per_warp, int most, const char* op) {
  constexpr int64_t kMaxSmem = 227 * 1024;  // an H100's or H200's opt-in shared memory per block
  const int64_t row_bytes = int64_t(rows_per_warp) * dim * int64_t(sizeof(float));
  const int64_t fits = kMaxSmem / row_bytes;
  ML_CHECK(fits >= 1, op, ": dim ", dim, " exceeds the ", kMaxSmem / (int64_t(rows_per_warp) * sizeof(float)),
           " columns one block can sum");
  return int(std::min<int64_t>(fits, most));
}

}  // namespace ml::cuda
