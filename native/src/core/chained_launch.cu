#include "chained_launch.cuh"

#include <cstdlib>
#include <cstring>

#include "compute_capability.h"

namespace ml::cuda {

bool chained_launches() {
  static const bool switched_on = [] {
    const char* setting = std::getenv("MAMBALAB_CHAINED_LAUNCH");
    return !(setting && std::strcmp(setting, "0") == 0);
  }();
  return switched_on && current_compute_capability() >= 90;
}

}  // namespace ml::cuda
