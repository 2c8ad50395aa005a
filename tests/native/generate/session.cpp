// Generation's recurrent path against the parallel forward, on the CPU backend: for every
// layer kind, the logits after prefilling a prompt and then feeding the rest of the sequence
// one token at a time equal the parallel forward's at every position.
#include "generate/session.h"

#include <cmath>
#include <functional>

#include "../harness.h"
#include "../nn/layer_check.h"

using namespace mltest;

namespace {

ml::ModelConfig every_kind(ml::RouterKind router) {
  ml::ModelConfig c;
  c.vocab_size = 37, c.pad_vocab_multiple = 8, c.d_model = 16, c.seed = 9;
  c.layers = {{'M'}, {'E'}, {'A'}, {'F'}, {'M', 'E'}, {'A', 'F'}};
  c.mamba.d_model = 16, c.mamba.d_state = 4;
  c.mlp = {ml::FfnKind::Gelu, 24};
  c.moe.num_experts = 3, c.moe.expert = {ml::FfnKind::SwiGLU, 12}, c.moe.router.kind = router;
  c.moe.router.capacity_factor = 0.5, c.moe.router_bias = true;  // training would drop; generation must not
  c.attention.heads = 4, c.attention.kv_heads = 2, c.attention.rope = true;
  return c;
}

// Relative error of the recurrent logits against the parallel ones, worst over every position
// from the prompt's last on, for prompts of 1 and of `len` / 2 tokens.
template <typename T>
std::string check_recurrent(const ml::ModelConfig& config, double bound, uint64_t seed) {
  ml::CpuBackend<T> cpu;
  ml::LanguageModel<ml::CpuBackend<T>> model(config, cpu);
  randomise_parameters(model.params(), *std::make_unique<ml::Rng>(seed));
  ml::GenerateSession<ml::CpuBackend<T>> session(model, false);
  const int64_t batch = 2, len = 13, V = config.vocab_size;
  ml::Rng rng(seed + 1);
  std::vector<int32_t> tokens(batch * len);
  for (auto& t : tokens) t = int32_t(rng.next_u64() % uint64_t(V));
  std::vector<T> parallel(batch * len * V);
  session.parallel_logits(tokens.data(), batch, len, parallel.data());

  Worst err("relative error", bound);
  for (const int64_t prompt : {int64_t(1), len / 2}) {
    ml::GenerateRequest request;
    for (int64_t r = 0; r < batch; ++r) {
      request.tokens.insert(request.tokens.end(), tokens.begin() + r * len, tokens.begin() + r * len + prompt);
      request.lengths.push_back(prompt);
    }
    request.max_new_tokens = len - prompt;
    std::vector<T> logits(batch * V);
    session.start(request, logits.data());
    for (int64_t t = prompt - 1; t < len; ++t) {
      if (t >= prompt) {
        std::vector<int32_t> step(batch);
        for (int64_t r = 0; r < batch; ++r) step[r] = tokens[r * len + t];
        session.feed(step.data(), batch, logits.data());
      }
      for (int64_t r = 0; r < batch; ++r) {
        double diff = 0, norm = 0;
        for (int64_t v = 0; v < V; ++v) {
          const double want = double(parallel[(r * len + t) * V + v]);
          diff += std::pow(double(logits[r * V + v]) - want, 2), norm += want * want;
        }
        err.add(str("prompt ", prompt, ", position ", t, ", row ", r), std::sqrt(diff / norm));
      }
    }
  }
  return err.report();
}

}  // namespace

NATIVE_TEST(generate_recurrent_logits_equal_parallel_fp64) {
  return check_recurrent<double>(every_kind(ml::RouterKind::Switch), 1e-12, 71) + "; sinkhorn " +
         check_recurrent<double>(every_kind(ml::RouterKind::Sinkhorn), 1e-12, 72);
}

NATIVE_TEST(generate_recurrent_logits_equal_parallel_fp32) {
  return check_recurrent<float>(every_kind(ml::RouterKind::Switch), 1e-5, 73);
}

NATIVE_TEST(generate_recurrent_logits_with_learned_positions_and_top2) {
  auto c = every_kind(ml::RouterKind::Switch);
  c.attention.rope = false, c.max_positions = 16, c.moe.router.top_k = 2, c.moe.router.capacity_factor = 0;
  return check_recurrent<double>(c, 1e-12, 74);
}

NATIVE_TEST(generate_refuses_prompts_longer_than_learned_positions) {
  auto c = every_kind(ml::RouterKind::Switch);
  c.attention.rope = false, c.max_positions = 4;
  ml::CpuBackend<double> cpu;
  ml::LanguageModel<ml::CpuBackend<double>> model(c, cpu);
  ml::GenerateSession<ml::CpuBackend<double>> session(model, false);
  ml::GenerateRequest request;
  request.tokens = {1, 2, 3, 4, 5}, request.lengths = {5}, request.max_new_tokens = 1;
  try {
    session.start(request, nullptr);
  } catch (const std::exception& e) {
    EXPECT(std::string(e.what()).find("max_positions 4") != std::string::npos, e.what());
    return e.what();
  }
  throw Failure("a prompt of 5 tokens was accepted with max_positions 4");
}
