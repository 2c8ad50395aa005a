// make_cuda_runtime for the CPU-only build (no CUDA compiler was found when it was configured).
#include "../core/error.h"
#include "runtime.h"

namespace ml {

std::unique_ptr<Runtime> make_cuda_runtime(const ModelConfig&, const RuntimeOptions&) {
  throw Error("device cuda: the engine was built without CUDA (no CUDA compiler found at configure time); "
              "use device 'cpu'");
}

}  // namespace ml
