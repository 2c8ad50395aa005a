#include "../../core/cuda_map.cuh"
#include "a_log.h"

namespace ml::cuda {
namespace {

struct NegExp {
  __device__ float operator()(float a_log) const { return -expf(a_log); }
};

// Not a map: da_log is read and written (maps take restrict-qualified distinct arrays).
__global__ void a_log_backward_kernel(const float* __restrict__ A, const float* __restrict__ dA,
                                      float* __restrict__ da_log, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    da_log[i] += dA[i] * A[i];
}

}  // namespace

void a_log_forward(const float* a_log, float* A, int64_t n, cudaStream_t stream) {
  map("a_log_forward", NegExp{}, A, n, stream, a_log);
}

void a_log_backward(const float* A, const float* dA, float* da_log, int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  a_log_backward_kernel<<<blocks_for(n, 256), 256, 0, stream>>>(A, dA, da_log, n);
  ML_CUDA_CHECK_LAUNCH("a_log_backward");
}

}  // namespace ml::cuda
