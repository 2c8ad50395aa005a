#include "compute_capability.h"

#include <cuda_runtime.h>

#include <atomic>

#include "cuda_check.h"

namespace ml::cuda {

int current_compute_capability() {
  int device = 0;
  ML_CUDA_CHECK("compute capability", cudaGetDevice(&device));
  static std::atomic<int> known[64];  // 0: not asked yet
  std::atomic<int>* slot = device >= 0 && device < 64 ? &known[device] : nullptr;
  if (slot && slot->load() != 0) return slot->load();
  int major = 0, minor = 0;
  ML_CUDA_CHECK("compute capability", cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  ML_CUDA_CHECK("compute capability", cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
  if (slot) slot->store(major * 10 + minor);
  return major * 10 + minor;
}

}  // namespace ml::cuda
