// The GPU attention layer against the fp64 CPU one on the same weights: plain, grouped-query
// and multi-query heads, with and without RoPE, fp32 and bf16; two runs bit-identical.
#include "gpu/nn/layer_check.h"
#include "nn/attention.h"

using namespace gputest;

namespace {

template <typename T>
struct Setup {
  Setup(const ml::AttentionConfig& config, int64_t d_model, int64_t batch, int64_t len, uint64_t seed)
      : pair(
            [&](auto& params) {
              using B = typename std::remove_reference_t<decltype(params)>::Backend;
              return std::make_unique<ml::AttentionLayer<B>>(d_model, config, params, "backbone.layers.0.attn.", 4);
            },
            seed) {
    ml::Rng rng(seed);
    x = rounded<T>(uniform(rng, batch * len * d_model));
    dy = rounded<T>(uniform(rng, batch * len * d_model));
  }

  LayerPair<T> pair;
  std::vector<double> x, dy;
};

template <typename T>
std::string check_layer(const ml::AttentionConfig& config, int64_t d_model, int64_t batch, int64_t len, uint64_t seed) {
  Setup<T> s(config, d_model, batch, len, seed);
  const GpuRun got = run_gpu<T>(s.pair, s.x, s.dy, batch, len);
  return compare<T>(s.pair, got, s.x, s.dy, batch, len);
}

}  // namespace

NATIVE_TEST(cuda_attention_layer_fp32) { return check_layer<float>({4, 4, false, 1e4}, 64, 2, 45, 1101); }
NATIVE_TEST(cuda_attention_layer_fp32_gqa_rope) { return check_layer<float>({8, 2, true, 1e4}, 64, 2, 70, 1102); }
NATIVE_TEST(cuda_attention_layer_fp32_mqa_rope_one_token) {
  return check_layer<float>({4, 1, true, 1e4}, 32, 1, 1, 1103);
}
NATIVE_TEST(cuda_attention_layer_bf16_gqa_rope) { return check_layer<bf16>({8, 2, true, 1e4}, 64, 2, 70, 1104); }
NATIVE_TEST(cuda_attention_layer_fp32_deterministic) {
  Setup<float> s({4, 2, true, 1e4}, 32, 2, 90, 1105);
  const GpuRun first = run_gpu<float>(s.pair, s.x, s.dy, 2, 90);
  const GpuRun second = run_gpu<float>(s.pair, s.x, s.dy, 2, 90);
  EXPECT(first.bytes == second.bytes, "two runs differ");
  return mltest::str(first.bytes.size(), " bytes of y, dx and gradients identical");
}
