#include "runtime.h"

#include "../nn/cpu_backend.h"
#include "model_runtime.h"

namespace ml {

std::unique_ptr<Runtime> make_runtime(const ModelConfig& config, DType dtype, const RuntimeOptions& options) {
  if (options.device == Device::Cuda) {
    ML_CHECK(dtype == DType::F32, "device cuda: dtype must be float32 (fp32 master weights; choose the compute "
             "precision with precision 'bf16' or 'fp32'), got ", dtype_name(dtype));
    return make_cuda_runtime(config, options);
  }
  if (dtype == DType::F64) return std::make_unique<ModelRuntime<CpuBackend<double>>>(config, false);
  return std::make_unique<ModelRuntime<CpuBackend<float>>>(config, false);
}

}  // namespace ml
