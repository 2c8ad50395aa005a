#include "chained_launch.cuh"

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace ml::cuda {

bool chained_launches() {
  static const bool switched_on = [] {
    const char* setting = std::getenv("MAMBALAB_CHAINED_LAUNCH");
    return !(setting && std::strcmp(setting, "0") == 0);
  }();
  if (!switched_on) return false;
  int device = 0;
  ML_CUDA_CHECK("chained launch", cudaGetDevice(&device));
  // Per device, asked once: 0 not yet known, 1 no, 2 yes.
  static std::atomic<int> capable[64];
  if (device < 0 || device >= 64) return false;
  int known = capable[device].load();
  if (known == 0) {
    int major = 0;
    ML_CUDA_CHECK("chained launch", cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
    known = major >= 9 ? 2 : 1;
    capable[device].store(known);
  }
  return known == 2;
}

}  // namespace ml::cuda
