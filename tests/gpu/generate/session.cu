// Generation on the GPU: the decode steps' logits at every position against the fp64 CPU
// model's parallel forward on the same weights, for every layer kind (and the GPU's own
// parallel forward, which prefill runs): fp32 within 1e-5, bf16 within its noise.
#include <cuda_bf16.h>

#include <algorithm>

#include "generate/session.h"
#include "gpu/nn/layer_check.h"

using namespace gputest;

namespace {

ml::ModelConfig every_kind(ml::RouterKind router) {
  ml::ModelConfig c;
  c.vocab_size = 97, c.pad_vocab_multiple = 8, c.d_model = 32, c.seed = 6;
  c.layers = {{'M'}, {'E'}, {'A'}, {'F'}, {'M', 'E'}};
  c.mamba.d_model = 32;
  c.mlp = {ml::FfnKind::Gelu, 48};
  c.moe.num_experts = 4, c.moe.expert = {ml::FfnKind::SwiGLU, 40}, c.moe.router_bias = true;
  c.moe.router.kind = router, c.moe.router.capacity_factor = 1.0;
  c.attention = {4, 2, true, 1e4};
  return c;
}

// Sequence r's logits at position t from a (batch × vocab) step.
std::vector<double> row_of(const std::vector<float>& logits, int64_t r, int64_t vocab) {
  return {logits.begin() + r * vocab, logits.begin() + (r + 1) * vocab};
}

template <typename T>
std::string check_generation(const ml::ModelConfig& config, double bound, uint64_t seed, int64_t len = 70) {
  Cpu64 cpu;
  ml::LanguageModel<Cpu64> host(config, cpu);
  Gpu<T> gpu(true);
  ml::LanguageModel<Gpu<T>> device(config, gpu);
  share_weights<T>(host.params(), device.params());
  const int64_t batch = 2, prompt = 37, V = config.vocab_size;  // 70: past one scan tile, past two decode tiles
  ml::Rng rng(seed);
  std::vector<int32_t> tokens(size_t(batch * len));
  for (auto& t : tokens) t = int32_t(rng.next_u64() % uint64_t(V));
  std::vector<double> want(size_t(batch * len * V));
  ml::GenerateSession<Cpu64> reference(host, false);
  reference.parallel_logits(tokens.data(), batch, len, want.data());
  const auto wanted = [&](int64_t r, int64_t t) {
    return std::vector<double>(want.begin() + (r * len + t) * V, want.begin() + (r * len + t + 1) * V);
  };

  ml::GenerateSession<Gpu<T>> session(device, true);
  Errors errors(bound);
  std::vector<float> parallel(size_t(batch * len * V));
  session.parallel_logits(tokens.data(), batch, len, parallel.data());
  for (int64_t r = 0; r < batch; ++r)
    errors.add(mltest::str("parallel row ", r),
               std::vector<double>(parallel.begin() + r * len * V, parallel.begin() + (r + 1) * len * V),
               std::vector<double>(want.begin() + r * len * V, want.begin() + (r + 1) * len * V));

  ml::GenerateRequest request;
  for (int64_t r = 0; r < batch; ++r) {
    request.tokens.insert(request.tokens.end(), tokens.begin() + r * len, tokens.begin() + r * len + prompt);
    request.lengths.push_back(prompt);
  }
  request.max_new_tokens = len - prompt;
  std::vector<float> logits(size_t(batch * V));
  session.start(request, logits.data());
  for (int64_t t = prompt - 1; t < len; ++t) {
    if (t >= prompt) {
      std::vector<int32_t> step(static_cast<size_t>(batch));
      for (int64_t r = 0; r < batch; ++r) step[size_t(r)] = tokens[size_t(r * len + t)];
      session.feed(step.data(), batch, logits.data());
    }
    for (int64_t r = 0; r < batch; ++r) errors.add(mltest::str("step ", t, " row ", r), row_of(logits, r, V), wanted(r, t));
    // From the second decode step on, the steps are one captured graph's replays.
    if (t >= prompt + 1 && !session.replaying())
      throw mltest::Failure(mltest::str("decode step ", t - prompt + 1, " did not replay a CUDA graph"));
  }
  return ml::describe_layers(config.layers) + ": " + errors.report().substr(0, 200);
}

}  // namespace

NATIVE_TEST(cuda_generate_fp32_switch_matches_cpu) {
  return check_generation<float>(every_kind(ml::RouterKind::Switch), 1e-5, 1401);
}
NATIVE_TEST(cuda_generate_fp32_sinkhorn_matches_cpu) {
  return check_generation<float>(every_kind(ml::RouterKind::Sinkhorn), 1e-5, 1402);
}
// bf16 without MoE layers: its rounding flips near-tied top-1 routes (LM parity counts them),
// and a token routed to another expert differs by far more than bf16's noise. The routers'
// decode steps are bounded in fp32 above.
NATIVE_TEST(cuda_generate_bf16_matches_cpu) {
  auto c = every_kind(ml::RouterKind::Switch);
  c.layers = {{'M'}, {'A'}, {'F'}, {'M', 'F'}};
  return check_generation<bf16>(c, 3e-2, 1403);
}
// A KV cache long enough to be split into spans (ops/attention_decode), inside the replayed graph.
NATIVE_TEST(cuda_generate_fp32_long_cache_matches_cpu) {
  auto c = every_kind(ml::RouterKind::Switch);
  c.layers = {{'M'}, {'A'}, {'F'}};
  return check_generation<float>(c, 1e-5, 1405, 300);
}
NATIVE_TEST(cuda_generate_fp32_learned_positions_matches_cpu) {
  auto c = every_kind(ml::RouterKind::Switch);
  c.attention.rope = false, c.max_positions = 80;
  return check_generation<float>(c, 1e-5, 1404);
}

namespace {

// Greedy decoding picks each id on the device, inside the replayed graph: the ids it returns
// are the host's argmax of the logits the same tokens give when fed back one by one.
template <typename T>
std::string check_greedy_on_device(const ml::ModelConfig& config, uint64_t seed) {
  Gpu<T> gpu(true);
  ml::LanguageModel<Gpu<T>> model(config, gpu);
  ml::GenerateSession<Gpu<T>> session(model, true);
  const int64_t batch = 2, prompt = 9, steps = 24, V = config.vocab_size;
  ml::Rng rng(seed);
  ml::GenerateRequest request;
  for (int64_t i = 0; i < batch * prompt; ++i) request.tokens.push_back(int32_t(rng.next_u64() % uint64_t(V)));
  request.lengths.assign(size_t(batch), prompt);
  request.max_new_tokens = steps;
  std::vector<float> logits(size_t(batch * V));
  session.start(request, logits.data());
  const ml::GenerateChunk chunk = session.next(steps, 1e9);
  if (int64_t(chunk.tokens.size()) != steps * batch || !chunk.cuda_graph)
    throw mltest::Failure(mltest::str(chunk.tokens.size(), " tokens, cuda_graph ", chunk.cuda_graph));

  session.start(request, logits.data());
  for (int64_t step = 0; step < steps; ++step) {
    for (int64_t r = 0; r < batch; ++r) {
      const auto row = logits.begin() + r * V;
      const int32_t want = int32_t(std::max_element(row, row + V) - row), got = chunk.tokens[size_t(step * batch + r)];
      if (got != want) throw mltest::Failure(mltest::str("step ", step, " row ", r, ": ", got, " on the device, ", want, " on the host"));
    }
    session.feed(chunk.tokens.data() + step * batch, batch, logits.data());
  }
  return mltest::str(steps, " steps × ", batch, " sequences: the same ids");
}

}  // namespace

NATIVE_TEST(cuda_generate_greedy_picks_ids_on_the_device) {
  return check_greedy_on_device<float>(every_kind(ml::RouterKind::Sinkhorn), 1405) + "; bf16 " +
         check_greedy_on_device<bf16>(every_kind(ml::RouterKind::Switch), 1406);
}
