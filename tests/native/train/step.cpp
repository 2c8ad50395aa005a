#include "train/step.h"

#include <unistd.h>

#include <thread>

#include "../harness.h"
#include "dist/shared_memory.h"
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

// Everything a step may change: weights and both moments (all of them, from tensor 0 on), as bytes.
std::vector<unsigned char> state_bytes(const ml::ParamStore<Cpu64>& p) {
  std::vector<unsigned char> out;
  const auto moments = p.moments_of(0);
  for (const double* base : {p.master(0), moments.m, moments.v}) {
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

// Data parallel: 2 and 4 ranks (threads, each its own replica and mapping of the rendezvous),
// each stepping on its equal slice of the batch, with 1, 2 or (per rank) different numbers of
// micro-batches, make the update of one process on the whole batch (fp64: to rounding), and the
// replicas stay bit-identical.
NATIVE_TEST(train_step_data_parallel_matches_one_process) {
  const int64_t rows = 8, len_plus_one = 13, steps = 3;
  std::vector<std::vector<int32_t>> batches;
  for (int64_t s = 0; s < steps; ++s) batches.push_back(random_tokens(94 + uint64_t(s), rows * len_plus_one));
  ml::OptimizerConfig opt;
  opt.grad_clip = 0.05;  // clipping on: the norm must be that of the whole batch's gradient
  auto train = [&](int rank, int world, int64_t micro, ml::Collective* collective) {
    Cpu64 cpu;
    ml::LanguageModel<Cpu64> model(small_config(), cpu);
    ml::TrainStep<Cpu64> step(model, false);
    step.set_collective(collective);
    const int64_t slice = rows / world;
    double loss = 0;
    for (const auto& batch : batches)
      loss = step.run(batch.data() + rank * slice * len_plus_one, slice, len_plus_one, 1e-2, opt, micro).loss;
    const auto& p = model.params();
    return std::make_pair(loss, std::vector<double>(p.master(0), p.master(0) + p.total()));
  };
  const auto [one_loss, one] = train(0, 1, 1, nullptr);
  double worst = 0;
  // micro 0: rank 0 in one pass and the others in 2 micro-batches (a GPU may fit each rank differently).
  for (const int world : {2, 4})
    for (const int64_t micro : {1, 2, 0}) {
      std::vector<std::pair<double, std::vector<double>>> replicas(static_cast<size_t>(world));
      const std::string path = "/tmp/mambalab-test-dp-" + std::to_string(getpid()) + "-" + std::to_string(world);
      std::vector<std::thread> threads;
      std::vector<std::string> failures(static_cast<size_t>(world));
      for (int r = 0; r < world; ++r)
        threads.emplace_back([&, r] {
          try {
            ml::SharedMemoryCollective c(path, uint64_t(world * 10 + micro), r, world, 60);
            replicas[size_t(r)] = train(r, world, micro > 0 ? micro : (r == 0 ? 1 : 2), &c);
          } catch (const std::exception& e) {
            failures[size_t(r)] = e.what();
          }
        });
      for (auto& t : threads) t.join();
      for (const auto& f : failures) EXPECT(f.empty(), f);
      for (int r = 1; r < world; ++r)
        EXPECT(replicas[size_t(r)] == replicas[0], "world ", world, " micro ", micro, ": rank ", r,
               " differs from rank 0");
      EXPECT(std::abs(replicas[0].first - one_loss) < 1e-12 * one_loss, "world ", world, ": loss ", replicas[0].first,
             " vs ", one_loss);
      for (size_t i = 0; i < one.size(); ++i)
        worst = std::max(worst, std::abs(replicas[0].second[i] - one[i]) / std::max(std::abs(one[i]), 1e-3));
    }
  EXPECT(worst < 1e-12, "weights differ from one process by ", worst, " (relative)");
  return str("2 and 4 ranks x 1, 2 and mixed micro-batches, ", steps, " steps: replicas identical, weights within ",
             worst, " of one process");
}

// NCCL sums GPU memory: a CPU model refuses a collective that can only sum so.
NATIVE_TEST(train_step_refuses_device_sums_on_the_cpu) {
  struct DeviceOnly final : ml::Collective {
    int rank() const override { return 0; }
    int world() const override { return 2; }
    void all_reduce_sum(float*, int64_t) override {}
    void all_reduce_sum(double*, int64_t) override {}
    void all_gather(float*, const std::vector<int64_t>&) override {}
    void all_gather(double*, const std::vector<int64_t>&) override {}
    void broadcast(void*, int64_t, int) override {}
    void all_to_all(const void*, const std::vector<int64_t>&, void*, const std::vector<int64_t>&) override {}
    bool device_sums() const override { return true; }
  } nccl_like;
  Cpu64 cpu;
  ml::LanguageModel<Cpu64> model(small_config(), cpu);
  ml::TrainStep<Cpu64> step(model, false);
  std::string error;
  try {
    step.set_collective(&nccl_like);
  } catch (const ml::Error& e) {
    error = e.what();
  }
  EXPECT(error.find("data parallel: NCCL sums GPU memory, and this model runs on the CPU") != std::string::npos,
         "got: ", error);
  return error;
}
