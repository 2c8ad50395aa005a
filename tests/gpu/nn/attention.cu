// The GPU attention layer against the fp64 CPU one on the same weights: plain, grouped-query
// and multi-query heads, with and without RoPE, fp32 and bf16; two runs bit-identical.
#include "gpu/nn/layer_check.h"
#include "nn/attention.h"

using namespace gputest;

namespace {

template <typename T>
LayerCase<T> attention(const ml::AttentionConfig& config, int64_t d_model, int64_t rows, uint64_t seed) {
  return LayerCase<T>(
      [&](auto& params) {
        using B = typename std::remove_reference_t<decltype(params)>::Backend;
        return std::make_unique<ml::AttentionLayer<B>>(d_model, config, params, "backbone.layers.0.attn.", 4);
      },
      rows, d_model, seed);
}

template <typename T>
std::string check_layer(const ml::AttentionConfig& config, int64_t d_model, int64_t batch, int64_t len, uint64_t seed) {
  auto c = attention<T>(config, d_model, batch * len, seed);
  return check(c, batch, len);
}

}  // namespace

NATIVE_TEST(cuda_attention_layer_fp32) { return check_layer<float>({4, 4, false, 1e4}, 64, 2, 45, 1101); }
NATIVE_TEST(cuda_attention_layer_fp32_gqa_rope) { return check_layer<float>({8, 2, true, 1e4}, 64, 2, 70, 1102); }
NATIVE_TEST(cuda_attention_layer_fp32_mqa_rope_one_token) {
  return check_layer<float>({4, 1, true, 1e4}, 32, 1, 1, 1103);
}
NATIVE_TEST(cuda_attention_layer_bf16_gqa_rope) { return check_layer<bf16>({8, 2, true, 1e4}, 64, 2, 70, 1104); }
NATIVE_TEST(cuda_attention_layer_fp32_deterministic) {
  auto c = attention<float>({4, 2, true, 1e4}, 32, 2 * 90, 1105);
  return check_deterministic(c, 2, 90);
}
