// The language model on the GPU. Its initial weights are the CPU's bit for bit: both draw them
// from one recipe (ops/param_init), the GPU on the device, without a CPU model. On shared
// weights, the loss, every gradient and every MoE layer's routing against the fp64 CPU model,
// for a pattern with every layer kind.
#include <cuda_bf16.h>

#include <cstring>
#include <functional>

#include "gpu/nn/layer_check.h"
#include "nn/lm.h"

using namespace gputest;

namespace {

ml::ModelConfig lm_config(std::vector<ml::LayerSpec> layers, ml::RouterKind router) {
  ml::ModelConfig c;
  c.vocab_size = 97, c.pad_vocab_multiple = 8, c.d_model = 32, c.layers = std::move(layers), c.seed = 5;
  c.mamba.d_model = 32;  // d_inner 64, d_state 16, dt_rank 2
  c.mlp = {ml::FfnKind::Gelu, 48};
  c.moe.num_experts = 4, c.moe.expert = {ml::FfnKind::SwiGLU, 40}, c.moe.router_bias = true;
  c.moe.router.kind = router, c.moe.router.capacity_factor = 1.25;
  return c;
}

const std::vector<ml::LayerSpec> kEveryKind = {{'M'}, {'E'}, {'F'}, {'M', 'E'}};

template <typename T>
std::string check_initial_weights() {
  const auto config = lm_config(kEveryKind, ml::RouterKind::Sinkhorn);
  ml::CpuBackend<float> cpu;
  ml::LanguageModel<ml::CpuBackend<float>> want(config, cpu);
  Gpu<T> gpu(true);
  ml::LanguageModel<Gpu<T>> got(config, gpu);
  gpu.sync();
  const auto& w = want.params();
  const auto& g = got.params();
  EXPECT(w.size() == g.size(), w.size(), " vs ", g.size(), " parameters");
  int64_t values = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    const size_t n = size_t(w.spec(i).numel);
    std::vector<float> master(n);
    check(cudaMemcpy(master.data(), g.master(i), n * sizeof(float), cudaMemcpyDeviceToHost), "master weights");
    EXPECT(std::memcmp(master.data(), w.master(i), n * sizeof(float)) == 0, w.spec(i).name, " differs from the CPU's");
    if constexpr (std::is_same_v<T, bf16>) {
      std::vector<bf16> compute(n);
      check(cudaMemcpy(compute.data(), g.compute(i), n * sizeof(bf16), cudaMemcpyDeviceToHost), "compute copy");
      for (size_t k = 0; k < n; ++k)
        EXPECT(to_double(compute[k]) == to_double(__float2bfloat16_rn(master[k])), w.spec(i).name, "[", k,
               "]: compute copy is not the rounded master weight");
    }
    values += int64_t(n);
  }
  return mltest::str(values, " values in ", w.size(), " tensors identical");
}

template <typename T>
std::string check_lm(const std::vector<ml::LayerSpec>& layers, ml::RouterKind router, double bound, uint64_t seed,
                     const std::function<void(ml::ModelConfig&)>& change = {}) {
  auto config = lm_config(layers, router);
  if (change) change(config);
  Cpu64 cpu;
  ml::LanguageModel<Cpu64> host(config, cpu);
  Gpu<T> gpu(true);
  ml::LanguageModel<Gpu<T>> device(config, gpu);
  share_weights<T>(host.params(), device.params());
  const int64_t batch = 3, len1 = 38;  // 37 steps: not a multiple of the scan's chunk
  ml::Rng rng(seed);
  std::vector<int32_t> tokens(size_t(batch * len1));
  for (auto& t : tokens) t = int32_t(rng.next_u64() % uint64_t(config.vocab_size));
  host.zero_grad();
  host.forward(tokens.data(), batch, len1, true);
  host.backward();
  device.zero_grad();
  device.forward(tokens.data(), batch, len1, true);
  device.backward();
  sync("lm");

  Errors errors(bound);
  const auto want_stats = host.expert_stats(), got_stats = device.expert_stats();
  EXPECT(want_stats.size() == got_stats.size(), want_stats.size(), " vs ", got_stats.size(), " MoE layers");
  double got_aux = 0;
  for (size_t l = 0; l < got_stats.size(); ++l) {
    got_aux += download_one(got_stats[l].aux_loss);
    for (int64_t e = 0; e < got_stats[l].experts; ++e)
      EXPECT(download_one(got_stats[l].counts, size_t(e)) == want_stats[l].counts[e], "MoE layer ", l, " expert ", e,
             " count differs from the CPU's");
  }
  errors.add("loss", {double(download_one(device.loss())) + got_aux}, {*host.loss() + mltest::aux_loss(want_stats)});
  for (size_t i = 0; i < host.params().size(); ++i) {
    std::vector<float> g(size_t(host.params().spec(i).numel));
    check(cudaMemcpy(g.data(), device.params().grad(i), g.size() * sizeof(float), cudaMemcpyDeviceToHost), "grad");
    errors.add(host.params().spec(i).name, std::vector<double>(g.begin(), g.end()), mltest::gradient(host.params(), i));
  }
  return ml::describe_layers(layers) + ": " + errors.report();
}

}  // namespace

NATIVE_TEST(cuda_lm_fp32_initial_weights_are_the_cpus) { return check_initial_weights<float>(); }
NATIVE_TEST(cuda_lm_bf16_initial_weights_are_the_cpus) { return check_initial_weights<bf16>(); }
NATIVE_TEST(cuda_lm_fp32_every_kind_switch_matches_cpu) {
  return check_lm<float>(kEveryKind, ml::RouterKind::Switch, 1e-5, 801);
}
NATIVE_TEST(cuda_lm_fp32_every_kind_sinkhorn_matches_cpu) {
  return check_lm<float>(kEveryKind, ml::RouterKind::Sinkhorn, 1e-5, 802);
}
// The Transformer baseline's ingredients (attention, learned positions) and a Jamba-style
// hybrid's (GQA attention with RoPE beside Mamba and a MoE).
NATIVE_TEST(cuda_lm_fp32_attention_matches_cpu) {
  return check_lm<float>({{'A'}, {'F'}, {'A'}, {'E'}}, ml::RouterKind::Switch, 1e-5, 804, [](ml::ModelConfig& c) {
    c.attention = {4, 4, false, 1e4};
    c.max_positions = 64;
  });
}
NATIVE_TEST(cuda_lm_fp32_hybrid_rope_gqa_matches_cpu) {
  return check_lm<float>({{'M'}, {'A', 'E'}, {'M'}}, ml::RouterKind::Switch, 1e-5, 805,
                         [](ml::ModelConfig& c) { c.attention = {8, 2, true, 1e4}; });
}
NATIVE_TEST(cuda_lm_bf16_attention_matches_cpu) {
  return check_lm<bf16>({{'A'}, {'F'}, {'M'}}, ml::RouterKind::Switch, 3e-2, 806, [](ml::ModelConfig& c) {
    c.attention = {4, 2, true, 1e4};
  });
}

NATIVE_TEST(cuda_lm_bf16_mamba_and_mlp_matches_cpu) {
  return check_lm<bf16>({{'M'}, {'F'}, {'M'}}, ml::RouterKind::Switch, 3e-2, 803);
}
