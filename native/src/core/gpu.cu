// query_gpu for the CUDA build. No driver, no device and a driver older than the runtime
// all come back as a status line, never as an exception.
#include <cuda_runtime.h>

#include <cstdlib>

#include "device_allocator.h"
#include "error.h"
#include "gpu.h"

namespace ml {

GpuInfo query_gpu() {
  GpuInfo info;
  info.built_with_cuda = true;
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();  // leave no error behind for later calls
    info.status = std::string("no GPU: ") + cudaGetErrorString(err);
    return info;
  }
  if (count == 0) {
    info.status = "no GPU: CUDA found no device";
    return info;
  }
  info.device_count = count;
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess) {
    info.name = prop.name;
    info.compute_capability = prop.major * 10 + prop.minor;
  } else {
    cudaGetLastError();
  }
  info.status = std::to_string(count) + (count == 1 ? " GPU: " : " GPUs: ") + info.name + " (compute capability " +
                std::to_string(info.compute_capability / 10) + "." + std::to_string(info.compute_capability % 10) +
                ")";
  return info;
}

int cuda_device() {
  const char* env = std::getenv("MAMBALAB_CUDA_DEVICE");
  if (!env || !*env) return 0;
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) cudaGetLastError();
  char* end = nullptr;
  const long device = std::strtol(env, &end, 10);
  ML_CHECK(*end == '\0' && device >= 0 && device < count, "MAMBALAB_CUDA_DEVICE: expected a CUDA device index in [0, ",
           count, "), got '", env, "'");
  return int(device);
}

GpuMemory gpu_memory() {
  GpuMemory m;
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    cudaGetLastError();
    return m;
  }
  const cuda::AllocatorStats stats = cuda::allocator_stats();
  m.in_use = stats.in_use, m.peak_in_use = stats.peak_in_use, m.cached = stats.cached;
  m.cuda_mallocs = stats.cuda_mallocs;
  // On the models' device (a bad MAMBALAB_CUDA_DEVICE fails the model itself, not this report).
  int device = 0;
  try {
    device = cuda_device();
  } catch (const Error&) {
  }
  if (cudaSetDevice(device) != cudaSuccess || cudaMemGetInfo(&m.device_free, &m.device_total) != cudaSuccess)
    cudaGetLastError();
  return m;
}

void reset_peak_gpu_memory() { cuda::reset_peak_in_use(); }

}  // namespace ml
