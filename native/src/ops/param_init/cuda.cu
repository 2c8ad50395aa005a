// Compiled with --fmad=false (CMakeLists.txt): param_init_value must round each step as the
// host does (see core/portable_math.h).
#include <cuda_runtime.h>

#include "../../core/cuda_check.h"
#include "../../core/cuda_math.cuh"
#include "param_init.h"

namespace ml::cuda {
namespace {

__global__ void param_init_kernel(ParamInit init, uint64_t start, float* __restrict__ out, int64_t n, int64_t first) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = float(param_init_value(init, start, first + i));
}

}  // namespace

void param_init(const ParamInit& init, uint64_t seed, const std::string& name, float* out, int64_t n,
                cudaStream_t stream, int64_t first) {
  if (n <= 0) return;
  param_init_kernel<<<blocks_for(n, 256), 256, 0, stream>>>(init, rng_start(seed, param_stream(name)), out, n, first);
  ML_CUDA_CHECK_LAUNCH("param_init");
}

}  // namespace ml::cuda
