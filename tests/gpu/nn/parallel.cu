// A parallel group 'F|E' on the GPU against the fp64 CPU one (an MLP and a mixture of experts
// reading the same input, outputs and input gradients summed), fp32 and bf16.
#include "gpu/nn/layer_check.h"
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
  LayerPair<T> pair(
      [&](auto& params) {
        using B = typename std::remove_reference_t<decltype(params)>::Backend;
        std::vector<std::unique_ptr<ml::Layer<B>>> branches;
        branches.push_back(std::make_unique<ml::MlpLayer<B>>(kDModel, mlp, params, kPrefix + "mlp.", 4));
        branches.push_back(std::make_unique<ml::MoeLayer<B>>(kDModel, moe, params, kPrefix + "moe.", 4));
        return std::make_unique<ml::ParallelLayer<B>>(params.backend(), kDModel, std::move(branches));
      },
      seed);
  const int64_t batch = 3, len = 19;
  ml::Rng rng(seed);
  const auto x = rounded<T>(coarse(rng, batch * len * kDModel)), dy = rounded<T>(uniform(rng, batch * len * kDModel));
  const GpuRun got = run_gpu<T>(pair, x, dy, batch, len);
  return compare<T>(pair, got, x, dy, batch, len);
}

}  // namespace

NATIVE_TEST(cuda_parallel_fp32_mlp_and_moe) { return check_parallel<float>(1, 1.0, 601); }
NATIVE_TEST(cuda_parallel_fp32_mlp_and_dropless_top2_moe) { return check_parallel<float>(2, 0.0, 602); }
NATIVE_TEST(cuda_parallel_bf16_mlp_and_moe) { return check_parallel<bf16>(1, 1.0, 603); }
