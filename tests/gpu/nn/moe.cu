// The GPU mixture of experts against the fp64 CPU one on the same weights: switch top-1
// with capacity drops (MoE-Mamba), top-2, dropless, Sinkhorn in training and inference
// (BlackMamba), GELU and SwiGLU experts, router bias, odd and single-token batches; and two
// runs giving bit-identical outputs and gradients.
#include <functional>

#include "gpu/nn/layer_check.h"
#include "nn/moe.h"

using namespace gputest;

namespace {

constexpr int64_t kDModel = 24;
const std::string kPrefix = "backbone.layers.1.moe.";

struct Case {
  int64_t experts = 8, top_k = 1;
  double capacity_factor = 1.0;
  ml::RouterKind router = ml::RouterKind::Switch;
  bool training = true;
  ml::FfnKind ffn = ml::FfnKind::Gelu;
  bool router_bias = false;
  int64_t batch = 3, len = 37;
};

ml::MoeConfig config(const Case& c) {
  ml::MoeConfig m;
  m.num_experts = c.experts;
  m.expert = {c.ffn, 40};
  m.router.kind = c.router;
  m.router.top_k = c.top_k;
  m.router.capacity_factor = c.capacity_factor;
  m.router.aux_weight = c.router == ml::RouterKind::Switch ? 0.01 : 0.0;
  m.router_bias = c.router_bias;
  return m;
}

// The layer on both backends with the same weights, and random inputs.
template <typename T>
struct Setup {
  Setup(const Case& c, uint64_t seed)
      : pair(
            [&](auto& params) {
              using B = typename std::remove_reference_t<decltype(params)>::Backend;
              return std::make_unique<ml::MoeLayer<B>>(kDModel, config(c), params, kPrefix, 4);
            },
            seed) {
    ml::Rng rng(seed);
    if (c.router_bias) {  // zero-initialised: give it values to check
      double* b = pair.host.master(pair.host.index(kPrefix + "router.bias"));
      for (int64_t e = 0; e < c.experts; ++e) b[e] = rng.uniform(-0.5, 0.5);
      pair.share_weights();
    }
    pair.cpu_layer->set_training(c.training);
    pair.gpu_layer->set_training(c.training);
    const int64_t rows = c.batch * c.len;
    x = rounded<T>(coarse(rng, rows * kDModel));
    dy = rounded<T>(uniform(rng, rows * kDModel));
  }

  LayerPair<T> pair;
  std::vector<double> x, dy;
};

template <typename T>
std::string check_moe(const Case& c, uint64_t seed) {
  Setup<T> s(c, seed);
  const GpuRun got = run_gpu<T>(s.pair, s.x, s.dy, c.batch, c.len);
  return compare<T>(s.pair, got, s.x, s.dy, c.batch, c.len);
}

// Two forward + backward passes of one layer: identical bytes.
template <typename T>
std::string check_deterministic(const Case& c, uint64_t seed) {
  Setup<T> s(c, seed);
  const GpuRun first = run_gpu<T>(s.pair, s.x, s.dy, c.batch, c.len);
  const GpuRun second = run_gpu<T>(s.pair, s.x, s.dy, c.batch, c.len);
  EXPECT(first.bytes == second.bytes, "two runs differ");
  return mltest::str(first.bytes.size(), " bytes of y, dx and gradients identical");
}

Case moe_mamba() {  // switch top-1, capacity 1.0, GELU, 32 experts
  Case c;
  c.experts = 32, c.batch = 2, c.len = 96;
  return c;
}

Case blackmamba(bool training) {  // Sinkhorn top-1, SwiGLU, router bias, dropless
  Case c;
  c.router = ml::RouterKind::Sinkhorn, c.training = training, c.ffn = ml::FfnKind::SwiGLU;
  c.router_bias = true, c.capacity_factor = 0.0;
  return c;
}

Case with(Case c, const std::function<void(Case&)>& change) {
  change(c);
  return c;
}

}  // namespace

NATIVE_TEST(cuda_moe_fp32_switch_top1_capacity_drops) { return check_moe<float>({}, 401); }
NATIVE_TEST(cuda_moe_fp32_moe_mamba_32_experts) { return check_moe<float>(moe_mamba(), 402); }
NATIVE_TEST(cuda_moe_fp32_switch_top2_swiglu_bias) {
  return check_moe<float>(with({}, [](Case& c) {
                            c.top_k = 2, c.capacity_factor = 1.25, c.ffn = ml::FfnKind::SwiGLU, c.router_bias = true;
                          }),
                          403);
}
NATIVE_TEST(cuda_moe_fp32_switch_heavy_drops) {
  return check_moe<float>(with({}, [](Case& c) { c.experts = 5, c.top_k = 2, c.capacity_factor = 0.5; }), 404);
}
NATIVE_TEST(cuda_moe_fp32_switch_dropless_top2) {
  return check_moe<float>(with({}, [](Case& c) { c.experts = 5, c.top_k = 2, c.capacity_factor = 0.0; }), 405);
}
NATIVE_TEST(cuda_moe_fp32_sinkhorn_training) { return check_moe<float>(blackmamba(true), 406); }
NATIVE_TEST(cuda_moe_fp32_sinkhorn_inference) { return check_moe<float>(blackmamba(false), 407); }
NATIVE_TEST(cuda_moe_fp32_sinkhorn_training_capacity) {
  return check_moe<float>(with(blackmamba(true), [](Case& c) { c.capacity_factor = 1.0; }), 408);
}
NATIVE_TEST(cuda_moe_fp32_one_token_top2) {
  return check_moe<float>(with({}, [](Case& c) { c.experts = 4, c.top_k = 2, c.batch = 1, c.len = 1; }), 409);
}
NATIVE_TEST(cuda_moe_fp32_one_token_dropless_sinkhorn) {
  return check_moe<float>(with(blackmamba(true), [](Case& c) { c.batch = 1, c.len = 1; }), 410);
}
NATIVE_TEST(cuda_moe_fp32_one_expert) {
  return check_moe<float>(with({}, [](Case& c) { c.experts = 1, c.batch = 1, c.len = 13; }), 411);
}
NATIVE_TEST(cuda_moe_bf16_switch_top1_capacity_drops) { return check_moe<bf16>({}, 412); }
NATIVE_TEST(cuda_moe_bf16_moe_mamba_32_experts) { return check_moe<bf16>(moe_mamba(), 413); }
NATIVE_TEST(cuda_moe_bf16_switch_top2_dropless) {
  return check_moe<bf16>(with({}, [](Case& c) { c.top_k = 2, c.capacity_factor = 0.0; }), 414);
}
NATIVE_TEST(cuda_moe_bf16_sinkhorn_training) { return check_moe<bf16>(blackmamba(true), 415); }
NATIVE_TEST(cuda_moe_bf16_sinkhorn_inference) { return check_moe<bf16>(blackmamba(false), 416); }
NATIVE_TEST(cuda_moe_fp32_deterministic_switch_top2) {
  return check_deterministic<float>(with({}, [](Case& c) { c.top_k = 2; }), 417);
}
NATIVE_TEST(cuda_moe_bf16_deterministic_sinkhorn_dropless) { return check_deterministic<bf16>(blackmamba(true), 418); }
