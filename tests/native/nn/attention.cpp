#include "nn/attention.h"

#include "core/error.h"
#include "layer_check.h"

using namespace mltest;

namespace {

std::string check_attention_layer(const ml::AttentionConfig& config, int64_t d_model, uint64_t seed) {
  Cpu64 cpu;
  Params64 params(cpu);
  ml::AttentionLayer<Cpu64> layer(d_model, config, params, "attn.", 2);
  params.allocate(seed);
  ml::Rng rng(seed);
  return check_layer_gradients(layer, params, d_model, rng, 2, 6);
}

}  // namespace

NATIVE_TEST(attention_layer_backward_matches_finite_differences) {
  return check_attention_layer({4, 4, false, 10000}, 8, 161) + "; GQA + RoPE: " +
         check_attention_layer({4, 2, true, 10000}, 16, 162) + "; MQA + RoPE: " +
         check_attention_layer({3, 1, true, 500}, 12, 163);
}

NATIVE_TEST(attention_layer_rejects_bad_shapes_before_allocating) {
  Cpu64 cpu;
  std::string seen;
  for (const auto& [config, d_model, want] : std::vector<std::tuple<ml::AttentionConfig, int64_t, std::string>>{
           {{5, 5, false, 1e4}, 12, "heads (5) must divide d_model (12)"},
           {{4, 3, false, 1e4}, 12, "kv_heads (3) must divide heads (4)"},
           {{4, 4, true, 1e4}, 12, "rope needs an even head dimension"}}) {
    Params64 params(cpu);
    try {
      ml::AttentionLayer<Cpu64> layer(d_model, config, params, "attn.", 1);
      throw Failure("accepted: " + want);
    } catch (const ml::Error& e) {
      EXPECT(std::string(e.what()).find(want) != std::string::npos, e.what());
      EXPECT(params.size() == 0, "parameters declared before the check");
      seen += (seen.empty() ? "" : "; ") + want;
    }
  }
  return seen;
}
