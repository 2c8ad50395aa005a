#include "train/memory.h"

#include "../harness.h"

using namespace mltest;

namespace {

ml::ModelConfig mamba_v1() {
  ml::ModelConfig c;
  c.vocab_size = 50257, c.pad_vocab_multiple = 64, c.d_model = 512, c.seed = 0;
  c.mamba.d_model = 512;
  c.layers = std::vector<ml::LayerSpec>(16, {'M'});
  return c;
}

}  // namespace

NATIVE_TEST(memory_estimate_scales_with_tokens_and_precision) {
  const auto c = mamba_v1();
  const int64_t params = 53'000'000;
  const auto small = ml::estimate_training_memory(c, params, 8, 1024, 2);
  const auto big = ml::estimate_training_memory(c, params, 64, 1024, 2);
  const auto fp32 = ml::estimate_training_memory(c, params, 64, 1024, 4);
  // Weights: fp32 value, gradient and two moments, plus the bf16 copy.
  EXPECT(small.weights == double(params) * 18, "weights ", small.weights);
  EXPECT(fp32.weights == double(params) * 16, "fp32 weights ", fp32.weights);
  EXPECT(std::abs(big.activations / small.activations - 8.0) < 1e-9, "activations scale with tokens: ",
         big.activations / small.activations);
  EXPECT(fp32.activations > big.activations, "fp32 activations ", fp32.activations, " <= bf16 ", big.activations);
  // 16 Mamba layers of d_inner 1024 at 64 × 1024 tokens keep about 12 GiB in bf16.
  const double gib = double(1 << 30);
  EXPECT(big.activations / gib > 10 && big.activations / gib < 16, "activations ", big.activations / gib, " GiB");
  return ml::describe(big);
}

NATIVE_TEST(memory_estimate_counts_experts_and_parallel_branches) {
  auto c = mamba_v1();
  c.moe.num_experts = 32, c.moe.expert = {ml::FfnKind::Gelu, 1536};
  c.layers = {{'M'}, {'E'}};
  const auto sequential = ml::estimate_training_memory(c, 1, 64, 1024, 2);
  c.layers = {{'M', 'E'}};
  const auto parallel = ml::estimate_training_memory(c, 1, 64, 1024, 2);
  c.layers = {{'M'}};
  const auto mamba_only = ml::estimate_training_memory(c, 1, 64, 1024, 2);
  EXPECT(sequential.activations > parallel.activations && parallel.activations > mamba_only.activations,
         "M E ", sequential.activations, ", M|E ", parallel.activations, ", M ", mamba_only.activations);
  return ml::describe(sequential);
}

NATIVE_TEST(memory_gib_prints_one_decimal) {
  EXPECT(ml::gib(double(int64_t{79} << 30) + 0.19 * double(1 << 30)) == "79.2 GiB", ml::gib(79.19 * double(1 << 30)));
  EXPECT(ml::gib(0) == "0.0 GiB", ml::gib(0));
  return ml::gib(1.5 * double(1 << 30));
}
