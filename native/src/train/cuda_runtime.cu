// The Runtime of a GPU model (model_runtime.h on the CUDA backend), on the device cuda_device()
// names, which every call selects first (bound_runtime.h). A model too large for the GPU is an
// error naming the config and what its parameters need.
#include <cuda_bf16.h>

#include "../core/cuda_check.h"
#include "../core/gpu.h"
#include "../nn/cuda_backend.h"
#include "bound_runtime.h"
#include "model_runtime.h"

namespace ml {

std::unique_ptr<Runtime> make_cuda_runtime(const ModelConfig& config, const RuntimeOptions& options) {
  const GpuInfo gpu = query_gpu();
  ML_CHECK(gpu.device_count > 0, "device cuda: ", gpu.status);
  const int device = cuda_device();
  const auto select = [device] { ML_CUDA_CHECK("device cuda", cudaSetDevice(device)); };
  select();
  try {
    std::unique_ptr<Runtime> runtime;
    if (options.precision == Precision::FP32)
      runtime = std::make_unique<ModelRuntime<CudaBackend<float>>>(config, options.cuda_graphs, options.deterministic);
    else
      runtime = std::make_unique<ModelRuntime<CudaBackend<__nv_bfloat16>>>(config, options.cuda_graphs,
                                                                           options.deterministic);
    return std::make_unique<BoundRuntime>(std::move(runtime), select);
  } catch (const cuda::OutOfDeviceMemory& e) {
    throw Error(detail::concat("out of GPU memory: layers '", describe_layers(config.layers), "', d_model ",
                               config.d_model, ": ", e.what()));
  }
}

}  // namespace ml
