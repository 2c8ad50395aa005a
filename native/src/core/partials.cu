#include "cuda_check.h"
#include "cuda_math.cuh"
#include "partials.h"

namespace ml::cuda {
namespace {

__global__ void sum_partials_kernel(const float* __restrict__ partial, int64_t parts, int64_t n,
                                    float* __restrict__ out, bool accumulate) {
  for (int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; j < n; j += int64_t(gridDim.x) * blockDim.x) {
    float s = accumulate ? out[j] : 0.f;
    for (int64_t p = 0; p < parts; ++p) s += partial[p * n + j];
    out[j] = s;
  }
}

}  // namespace

void sum_partials(const float* partial, int64_t parts, int64_t n, float* out, bool accumulate, cudaStream_t stream,
                  const char* op) {
  if (n <= 0) return;
  sum_partials_kernel<<<blocks_for(n, 256), 256, 0, stream>>>(partial, parts, n, out, accumulate);
  ML_CUDA_CHECK_LAUNCH(op);
}

}  // namespace ml::cuda
