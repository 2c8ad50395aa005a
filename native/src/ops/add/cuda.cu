// One grid-stride loop; y is read and written in place, so not core/cuda_map.cuh's map (whose
// output may not alias its inputs).
#include "../../core/cuda_check.h"
#include "../../core/cuda_math.cuh"
#include "add.h"

namespace ml::cuda {
namespace {

template <typename T>
__global__ void add_into_kernel(const T* __restrict__ x, T* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = from_float<T>(to_float(y[i]) + to_float(x[i]));
}

}  // namespace

template <typename T>
void add_into(const T* x, T* y, int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  add_into_kernel<T><<<blocks_for(n, 256), 256, 0, stream>>>(x, y, n);
  ML_CUDA_CHECK_LAUNCH("add_into");
}

template void add_into<float>(const float*, float*, int64_t, cudaStream_t);
template void add_into<bf16>(const bf16*, bf16*, int64_t, cudaStream_t);

}  // namespace ml::cuda
