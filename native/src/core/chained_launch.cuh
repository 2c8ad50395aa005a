// Chained launches (programmatic dependent launch, compute capability 9.0+). A decode step is
// a few hundred small kernels in a row, each waiting for the one before; launched plainly, each
// pays its launch and its blocks' start after the previous one has finished. A kernel started
// with launch_chained may be launched while the kernel before it runs: it begins with
// chain_wait(), which holds it until every earlier kernel of the stream has finished and its
// writes are visible, and then lets the next chained kernel launch. Correct only if the kernel
// touches no global memory before chain_wait(). MAMBALAB_CHAINED_LAUNCH=0 launches plainly, to
// measure one against the other.
#pragma once
#include <cuda_runtime.h>

#include <utility>

#include "cuda_check.h"

namespace ml::cuda {

__device__ __forceinline__ void chain_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// Whether this thread's current device takes chained launches (and they are not switched off).
bool chained_launches();

template <typename... Params, typename... Args>
void launch_chained(const char* op, void (*kernel)(Params...), dim3 grid, dim3 block, size_t shared_bytes,
                    cudaStream_t stream, Args&&... args) {
  cudaLaunchAttribute chained{};
  chained.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  chained.val.programmaticStreamSerializationAllowed = chained_launches() ? 1 : 0;
  cudaLaunchConfig_t config{};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = shared_bytes;
  config.stream = stream;
  config.attrs = &chained;
  config.numAttrs = 1;
  ML_CUDA_CHECK(op, cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...));
}

}  // namespace ml::cuda
