// A parallel group 'F|E' on the GPU against ml::ParallelLayer<double> (an MLP and a mixture of
// experts reading the same input, outputs and input gradients summed), fp32 and bf16.
#include "gpu/nn/layer_check.h"
#include "nn/cuda/mlp.h"
#include "nn/cuda/moe.h"
#include "nn/cuda/parallel.h"
#include "nn/mlp.h"
#include "nn/moe.h"
#include "nn/parallel.h"

using namespace gputest;

namespace {

constexpr int64_t kDModel = 24;
const std::string kPrefix = "backbone.layers.0.";

template <typename T>
std::string check_parallel(int64_t top_k, double capacity_factor, uint64_t seed) {
  const ml::FfnConfig mlp{ml::FfnKind::Gelu, 48};
  ml::MoeConfig moe;
  moe.num_experts = 4, moe.expert = {ml::FfnKind::SwiGLU, 20};
  moe.router.top_k = top_k, moe.router.capacity_factor = capacity_factor;
  ml::ParamList<double> host;
  std::vector<std::unique_ptr<ml::Layer<double>>> cpu_branches;
  cpu_branches.push_back(std::make_unique<ml::MlpLayer<double>>(kDModel, mlp, host, kPrefix + "mlp.", seed, 4));
  cpu_branches.push_back(std::make_unique<ml::MoeLayer<double>>(kDModel, moe, host, kPrefix + "moe.", seed, 4));
  ml::ParallelLayer<double> cpu(kDModel, std::move(cpu_branches));

  const ml::ParamList<float> upload = device_copy<T>(host);
  ml::cuda::DeviceParams<T> device(upload, nullptr);
  ml::cuda::Context context;
  std::vector<std::unique_ptr<ml::cuda::Layer<T>>> branches;
  branches.push_back(ml::cuda::make_mlp_layer<T>(kDModel, mlp, device, kPrefix + "mlp.", context));
  branches.push_back(ml::cuda::make_moe_layer<T>(kDModel, moe, device, kPrefix + "moe.", context));
  auto gpu = ml::cuda::make_parallel_layer<T>(kDModel, std::move(branches), context);

  const int64_t batch = 3, len = 19;
  ml::Rng rng(seed);
  const auto x = rounded<T>(coarse(rng, batch * len * kDModel)), dy = rounded<T>(uniform(rng, batch * len * kDModel));
  const GpuRun got = run_gpu<T>(*gpu, device, x, dy, batch, len);
  return compare<T>(cpu, host, got, x, dy, batch, len);
}

}  // namespace

NATIVE_TEST(cuda_parallel_fp32_mlp_and_moe) { return check_parallel<float>(1, 1.0, 601); }
NATIVE_TEST(cuda_parallel_fp32_mlp_and_dropless_top2_moe) { return check_parallel<float>(2, 0.0, 602); }
NATIVE_TEST(cuda_parallel_bf16_mlp_and_moe) { return check_parallel<bf16>(1, 1.0, 603); }
