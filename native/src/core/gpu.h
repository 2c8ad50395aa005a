// What the engine knows about CUDA GPUs on this machine. Safe to call in every build: the
// CPU-only build reports that it was built without CUDA, and a CUDA build on a machine with
// no driver or no GPU reports why instead of failing.
#pragma once
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

}  // namespace ml
