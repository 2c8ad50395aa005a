#include "chained_launch.cuh"

#include "compute_capability.h"
#include "env_switch.h"

namespace ml::cuda {

bool chained_launches() {
  static const bool switched_on = !switched_off("MAMBALAB_CHAINED_LAUNCH");
  return switched_on && current_compute_capability() >= 90;
}

}  // namespace ml::cuda
