// query_gpu for the CPU-only build (no CUDA compiler was found when it was configured).
#include "device_allocator.h"
#include "gpu.h"

namespace ml {

GpuInfo query_gpu() {
  GpuInfo info;
  info.status = "no GPU: the engine was built without CUDA (no CUDA compiler found at configure time)";
  return info;
}

int cuda_device() { return 0; }

GpuMemory gpu_memory() { return {}; }

void reset_peak_gpu_memory() {}

// The runtime's out-of-memory path calls it on every backend (train/model_runtime.h): no cache here.
void cuda::device_release_cached() {}

}  // namespace ml
