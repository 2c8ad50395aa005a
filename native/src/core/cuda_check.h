// Error checks for CUDA calls and kernel launches in the CUDA backend: every failure throws
// ml::Error naming the op, the call and CUDA's own message. Included by .cu files only.
#pragma once
#include <cuda_runtime.h>

#include "error.h"

namespace ml::cuda {

[[noreturn]] inline void throw_cuda_error(const char* op, const char* call, cudaError_t err, const char* file, int line) {
  throw Error(detail::concat(op, ": ", call, " failed: ", cudaGetErrorName(err), " (", cudaGetErrorString(err), ") at ",
                             file, ":", line));
}

}  // namespace ml::cuda

// ML_CUDA_CHECK("rmsnorm_forward", cudaMemsetAsync(...)): throws on any error.
#define ML_CUDA_CHECK(op, call)                                                          \
  do {                                                                                   \
    const cudaError_t ml_err_ = (call);                                                  \
    if (ml_err_ != cudaSuccess) ::ml::cuda::throw_cuda_error(op, #call, ml_err_, __FILE__, __LINE__); \
  } while (0)

// After every kernel launch: catches bad launch configurations at once (errors inside the
// kernel surface at the next synchronising call, which is checked too).
#define ML_CUDA_CHECK_LAUNCH(op) ML_CUDA_CHECK(op, cudaGetLastError())
