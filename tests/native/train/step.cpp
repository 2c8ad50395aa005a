#include "train/step.h"

#include "../harness.h"
#include "nn/cpu_backend.h"

using namespace mltest;

// Repeating one batch, the model must memorise it: a loose end-to-end check that
// forward, backward, clipping and AdamW move the loss the right way.
NATIVE_TEST(train_step_overfits_one_batch) {
  ml::ModelConfig c;
  c.vocab_size = 50, c.d_model = 16, c.layers = {{'M'}, {'M'}}, c.seed = 1;
  c.mamba.d_model = 16;
  ml::CpuBackend<float> cpu;
  ml::LanguageModel<ml::CpuBackend<float>> model(c, cpu);
  ml::TrainStep<ml::CpuBackend<float>> step(model, false);
  ml::Rng rng(91);
  std::vector<int32_t> tokens(4 * 17);
  for (auto& t : tokens) t = int32_t(rng.next_u64() % 50);
  const ml::OptimizerConfig opt;
  double first = 0, last = 0;
  for (int i = 0; i < 60; ++i) {
    const auto m = step.run(tokens.data(), 4, 17, 1e-2, opt);
    EXPECT(std::isfinite(m.loss) && std::isfinite(m.grad_norm), "step ", i, " loss ", m.loss);
    EXPECT(!m.cuda_graph, "a CPU step replayed a graph");
    if (i == 0) first = m.loss;
    last = m.loss;
  }
  EXPECT(last < first - 2.0, "loss ", first, " -> ", last);
  EXPECT(step.steps_done() == 60, "steps ", step.steps_done());
  return str("loss ", first, " -> ", last, " in 60 steps");
}

namespace {

using Cpu64 = ml::CpuBackend<double>;

ml::ModelConfig small_config() {
  ml::ModelConfig c;
  c.vocab_size = 50, c.d_model = 16, c.layers = {{'M'}, {'F'}}, c.seed = 2;
  c.mamba.d_model = 16, c.mlp = {ml::FfnKind::Gelu, 24};
  return c;
}

std::vector<int32_t> random_tokens(uint64_t seed, int64_t n) {
  ml::Rng rng(seed);
  std::vector<int32_t> tokens(static_cast<size_t>(n));
  for (auto& t : tokens) t = int32_t(rng.next_u64() % 50);
  return tokens;
}

// Everything a step may change: weights and both moments, as bytes.
std::vector<unsigned char> state_bytes(const ml::ParamStore<Cpu64>& p) {
  std::vector<unsigned char> out;
  for (const double* base : {p.master(0), p.first_moment(0), p.second_moment(0)}) {
    const auto* raw = reinterpret_cast<const unsigned char*>(base);
    out.insert(out.end(), raw, raw + size_t(p.total()) * sizeof(double));
  }
  return out;
}

}  // namespace

// K micro-batches of B/K rows make the same update as one batch of B rows (fp64: to rounding).
NATIVE_TEST(train_step_micro_batches_match_one_batch) {
  const auto tokens = random_tokens(92, 8 * 13);
  ml::OptimizerConfig opt;
  opt.grad_clip = 0.05;  // clipping on, so the norm of the average is what it clips
  std::vector<std::vector<double>> weights;
  std::vector<double> losses;
  for (const int64_t k : {1, 2, 4, 8}) {
    Cpu64 cpu;
    ml::LanguageModel<Cpu64> model(small_config(), cpu);
    ml::TrainStep<Cpu64> step(model, false);
    const auto m = step.run(tokens.data(), 8, 13, 1e-2, opt, k);
    EXPECT(!m.skipped && step.steps_done() == 1, "k=", k, ": skipped or not counted");
    losses.push_back(m.loss);
    const auto& p = model.params();
    weights.emplace_back(p.master(0), p.master(0) + p.total());
  }
  double worst = 0;
  for (size_t k = 1; k < weights.size(); ++k) {
    EXPECT(std::abs(losses[k] - losses[0]) < 1e-12 * losses[0], "loss ", losses[k], " vs ", losses[0]);
    for (size_t i = 0; i < weights[0].size(); ++i)
      worst = std::max(worst, std::abs(weights[k][i] - weights[0][i]) / std::max(std::abs(weights[0][i]), 1e-3));
  }
  EXPECT(worst < 1e-12, "weights differ by ", worst, " (relative)");
  return str("1, 2, 4, 8 micro-batches: weights within ", worst, " of one batch");
}

// A step whose loss is not finite is skipped: no weight or moment changes, the step does not
// count, and the next finite step runs as if it had not happened.
NATIVE_TEST(train_step_skips_non_finite_steps) {
  const auto tokens = random_tokens(93, 4 * 9);
  Cpu64 cpu;
  ml::LanguageModel<Cpu64> model(small_config(), cpu);
  ml::TrainStep<Cpu64> step(model, false);
  auto& p = model.params();
  step.run(tokens.data(), 4, 9, 1e-3, {}, 1);
  const size_t embedding = p.index("backbone.embedding.weight");
  const double kept = p.master(embedding)[0];
  p.master(embedding)[0] = std::nan("");  // every token 0 now reads a NaN row
  std::vector<int32_t> bad = tokens;
  bad[0] = 0;
  const auto before = state_bytes(p);
  for (const int64_t k : {1, 2}) {
    const auto m = step.run(bad.data(), 4, 9, 1e-3, {}, k);
    EXPECT(m.skipped && !std::isfinite(m.loss), "k=", k, ": a NaN loss was applied (loss ", m.loss, ")");
    EXPECT(state_bytes(p) == before, "k=", k, ": a skipped step changed weights or moments");
    EXPECT(step.steps_done() == 1, "k=", k, ": a skipped step counted: ", step.steps_done());
  }
  p.master(embedding)[0] = kept;
  const auto m = step.run(tokens.data(), 4, 9, 1e-3, {}, 1);
  EXPECT(!m.skipped && std::isfinite(m.loss) && step.steps_done() == 2, "the next finite step runs and counts");
  return "NaN loss skipped twice (1 and 2 micro-batches), state unchanged, count unchanged";
}
