// make_nccl_collective for the CPU-only build (no CUDA compiler was found when it was configured).
#include "../core/error.h"
#include "nccl.h"

namespace ml {

std::shared_ptr<Collective> make_nccl_collective(const std::string&, uint64_t, int, int, int, double) {
  throw Error("data parallel over GPUs (NCCL): the engine was built without CUDA (no CUDA compiler found at configure "
              "time)");
}

}  // namespace ml
