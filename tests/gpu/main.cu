// The GPU test program: every CUDA op against its CPU reference. Without a usable GPU it
// says so and exits 0, so that it can run anywhere.
#include <iostream>
#include <string>

#include "core/gpu.h"
#include "native/harness.h"

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "--list") return mltest::run_all(argc, argv);
  const ml::GpuInfo gpu = ml::query_gpu();
  if (gpu.device_count == 0) {
    const std::string prefix = "no GPU: ";
    const bool has_prefix = gpu.status.compare(0, prefix.size(), prefix) == 0;
    std::cout << "no GPU: skipping (" << gpu.status.substr(has_prefix ? prefix.size() : 0) << ")" << std::endl;
    return 0;
  }
  std::cout << "# " << gpu.status << std::endl;
  return mltest::run_all(argc, argv);
}
