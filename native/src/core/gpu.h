// What the engine knows about CUDA GPUs on this machine. Safe to call in every build: the
// CPU-only build reports that it was built without CUDA, and a CUDA build on a machine with
// no driver or no GPU reports why instead of failing.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace ml {

struct GpuInfo {
  bool built_with_cuda = false;  // the engine holds the CUDA backend
  int device_count = 0;          // usable CUDA devices (0 when none or no driver)
  std::string name;              // device 0's name, when there is one
  int compute_capability = 0;    // device 0's, as major·10 + minor (90 for H100)
  std::string status;            // one line: "2 GPUs: NVIDIA H100 ..." or why there is none
};

GpuInfo query_gpu();

// The GPU this process's models use: $MAMBALAB_CUDA_DEVICE, an index among the devices CUDA sees
// (`mambalab train --gpus N` gives rank r device r), else 0. Throws when the variable holds no
// such index. The CPU-only build has no device to choose: 0.
int cuda_device();

// Device memory, in bytes: what the engine's caching allocator holds (in use by tensors,
// its high-water mark, kept free for reuse) and what the models' device (cuda_device()) has in all.
// Zeros without a GPU.
struct GpuMemory {
  size_t in_use = 0, peak_in_use = 0, cached = 0;
  int64_t cuda_mallocs = 0;
  size_t device_total = 0, device_free = 0;
};

GpuMemory gpu_memory();
// Starts a new high-water mark (GpuMemory::peak_in_use) at what is in use now.
void reset_peak_gpu_memory();

}  // namespace ml
