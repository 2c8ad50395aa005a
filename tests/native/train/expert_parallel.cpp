// Expert parallel (nn/moe.h, train/step.h): ranks that each hold, run and update only their
// block of every MoE layer's experts, exchanging tokens all-to-all, take the steps plain data
// parallel takes on the same ranks and global batch: bit for bit while clipping does not scale
// the step (the owner adds its sources' gradients in rank order, as the sum would), to rounding
// when it does (the norm's squares are added in another order). A rank's buffers hold its own
// experts alone; reads of expert tensors gather the owners' blocks, so a checkpoint holds the
// whole model and resumes anywhere.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>

#include "../harness.h"
#include "dist/shared_memory.h"
#include "train/runtime.h"

using namespace mltest;

namespace {

constexpr int64_t kRows = 8, kLenPlusOne = 9, kVocab = 50;

// MoE-Mamba: switch top-1 with a capacity (tokens dropped), GELU experts.
ml::ModelConfig switch_moe() {
  ml::ModelConfig c;
  c.vocab_size = kVocab, c.d_model = 16, c.layers = {{'M'}, {'E'}, {'M'}, {'E'}}, c.seed = 6;
  c.mamba.d_model = 16;
  c.moe.num_experts = 4, c.moe.expert = {ml::FfnKind::Gelu, 12}, c.moe.router.kind = ml::RouterKind::Switch;
  c.moe.router.capacity_factor = 1.0, c.moe.router.aux_weight = 0.01;
  return c;
}

// BlackMamba-style: Sinkhorn top-2, dropless, router bias, SwiGLU experts.
ml::ModelConfig sinkhorn_moe() {
  ml::ModelConfig c = switch_moe();
  c.moe.expert = {ml::FfnKind::SwiGLU, 12}, c.moe.router.kind = ml::RouterKind::Sinkhorn;
  c.moe.router.top_k = 2, c.moe.router.capacity_factor = 0, c.moe.router_bias = true;
  return c;
}

std::vector<int32_t> batch_of_step(uint64_t step) {
  ml::Rng rng(300 + step);
  std::vector<int32_t> batch(size_t(kRows * kLenPlusOne));
  for (auto& t : batch) t = int32_t(rng.next_u64() % uint64_t(kVocab));
  return batch;
}

// What a rank saw and ends with: per step loss, gradient norm and expert counts (with dropped);
// then every tensor's weights and moments, read through the runtime (collective under EP).
struct Run {
  std::vector<double> losses, norms;
  std::vector<int64_t> counts;
  std::vector<std::vector<double>> state;  // tensor by tensor: value, m, v
  ml::ParamMemory joined, trained;         // the parameters' buffers after joining, after the steps
};

std::vector<std::vector<double>> read_state(ml::Runtime& rt) {
  std::vector<std::vector<double>> out;
  for (const auto& p : rt.params())
    for (const ml::Slot slot : {ml::Slot::Value, ml::Slot::FirstMoment, ml::Slot::SecondMoment}) {
      std::vector<double> values(size_t(ml::shape_numel(p.shape)));
      rt.read(p.name, slot, values.data(), values.size() * sizeof(double));
      out.push_back(std::move(values));
    }
  return out;
}

void write_state(ml::Runtime& rt, const std::vector<std::vector<double>>& state) {
  size_t at = 0;
  for (const auto& p : rt.params())
    for (const ml::Slot slot : {ml::Slot::Value, ml::Slot::FirstMoment, ml::Slot::SecondMoment}) {
      rt.write(p.name, slot, state[at].data(), state[at].size() * sizeof(double));
      ++at;
    }
}

struct Plan {
  ml::ModelConfig config;
  int world = 1;
  bool expert_parallel = false;
  int64_t first_step = 0, steps = 3, micro = 1;
  double grad_clip = 0;
  const std::vector<std::vector<double>>* resume = nullptr;  // state to start from (a checkpoint)
};

Run train(const Plan& plan, int rank, const std::string& path) {
  auto rt = ml::make_runtime(plan.config, ml::DType::F64);
  if (plan.world > 1)
    rt->join_ranks(std::make_shared<ml::SharedMemoryCollective>(path, 11, rank, plan.world, 60), false,
                   plan.expert_parallel);
  Run out;
  out.joined = rt->parameter_memory();
  if (plan.resume) write_state(*rt, *plan.resume), rt->set_steps_done(plan.first_step);
  const int64_t rows = kRows / plan.world;
  ml::OptimizerConfig opt;
  opt.grad_clip = plan.grad_clip;
  for (int64_t s = plan.first_step; s < plan.first_step + plan.steps; ++s) {
    const auto batch = batch_of_step(uint64_t(s));
    const auto m = rt->train_step(batch.data() + rank * rows * kLenPlusOne, rows, kLenPlusOne, 1e-2, opt, plan.micro);
    out.losses.push_back(m.loss), out.norms.push_back(m.grad_norm);
    for (const auto& layer : m.experts) {
      out.counts.insert(out.counts.end(), layer.counts.begin(), layer.counts.end());
      out.counts.push_back(layer.dropped);
    }
  }
  out.trained = rt->parameter_memory();
  out.state = read_state(*rt);
  return out;
}

// Every rank on its own thread; their runs in rank order.
std::vector<Run> on_ranks(const Plan& plan) {
  const std::string path = "/tmp/mambalab-test-ep-" + std::to_string(getpid());
  std::vector<Run> out(static_cast<size_t>(plan.world));
  std::vector<std::string> failures(static_cast<size_t>(plan.world));
  std::vector<std::thread> threads;
  for (int r = 0; r < plan.world; ++r)
    threads.emplace_back([&, r] {
      try {
        out[size_t(r)] = train(plan, r, path);
      } catch (const std::exception& e) {
        failures[size_t(r)] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  for (const auto& f : failures) EXPECT(f.empty(), f);
  return out;
}

// Largest relative difference between two states (0 when bit-identical).
double state_difference(const std::vector<std::vector<double>>& a, const std::vector<std::vector<double>>& b) {
  double worst = a.size() == b.size() ? 0 : INFINITY;
  for (size_t t = 0; t < std::min(a.size(), b.size()); ++t)
    for (size_t i = 0; i < a[t].size(); ++i)
      worst = std::max(worst, std::abs(a[t][i] - b[t][i]) / std::max(std::abs(b[t][i]), 1e-3));
  return worst;
}

bool same_bits(const std::vector<std::vector<double>>& a, const std::vector<std::vector<double>>& b) {
  if (a.size() != b.size()) return false;
  for (size_t t = 0; t < a.size(); ++t)
    if (a[t].size() != b[t].size() || std::memcmp(a[t].data(), b[t].data(), a[t].size() * sizeof(double)) != 0)
      return false;
  return true;
}

// EP against plain DP on the same ranks: counts always equal; unclipped bit for bit (losses,
// weights, moments, the norm to rounding); clipped within `tolerance`.
std::string matches_data_parallel(const ml::ModelConfig& config, const char* name) {
  const double tolerance = 1e-12;
  double worst_norm = 0, worst_clipped = 0;
  for (const int world : {2, 4})
    for (const int64_t micro : {int64_t{1}, int64_t{2}})
      for (const double clip : {0.0, 0.05}) {
        Plan plan{config, world, false, 0, 3, micro, clip};
        const auto plain = on_ranks(plan);
        plan.expert_parallel = true;
        const auto experts = on_ranks(plan);
        for (int r = 0; r < world; ++r) {
          const Run &a = plain[size_t(r)], &b = experts[size_t(r)];
          const std::string at = str(name, " world ", world, " micro ", micro, " clip ", clip, " rank ", r);
          EXPECT(a.counts == b.counts && !a.counts.empty(), at, ": expert counts or dropped differ");
          EXPECT(same_bits(b.state, experts[0].state), at, ": the ranks read different models");
          for (size_t s = 0; s < a.norms.size(); ++s)
            worst_norm = std::max(worst_norm, std::abs(a.norms[s] - b.norms[s]) / a.norms[s]);
          if (clip == 0) {
            EXPECT(a.losses == b.losses, at, ": losses differ");
            EXPECT(same_bits(a.state, b.state), at, ": weights or moments differ (relative ",
                   state_difference(b.state, a.state), ")");
          } else {
            EXPECT(a.norms[0] > clip, at, ": clipping never scaled the step");
            for (size_t s = 0; s < a.losses.size(); ++s)
              worst_clipped = std::max(worst_clipped, std::abs(a.losses[s] - b.losses[s]) / a.losses[s]);
            worst_clipped = std::max(worst_clipped, state_difference(b.state, a.state));
          }
        }
      }
  EXPECT(worst_norm < tolerance, name, ": gradient norms differ by ", worst_norm);
  EXPECT(worst_clipped < tolerance, name, ": clipped steps differ by ", worst_clipped);
  return str(name, ", 2 and 4 ranks x 1 and 2 micro-batches: counts equal; unclipped bit-identical; norms within ",
             worst_norm, ", clipped within ", worst_clipped, " (relative)");
}

std::string error_of(const std::function<void()>& work) {
  try {
    work();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace

NATIVE_TEST(expert_parallel_switch_moe_matches_data_parallel) {
  return matches_data_parallel(switch_moe(), "switch top-1 capacity 1.0, GELU");
}

NATIVE_TEST(expert_parallel_sinkhorn_top2_matches_data_parallel) {
  return matches_data_parallel(sinkhorn_moe(), "Sinkhorn top-2 dropless, SwiGLU");
}

// A checkpoint taken from an EP run (2 ranks) holds the whole model: loaded on 1 rank it is the
// EP run's state bit for bit; on 2 plain ranks it continues bit for bit as the EP run does
// (unclipped); on 4 ranks, EP and plain continue alike. (A run on another number of ranks routes
// each rank's tokens apart, as plain data parallel does, so its steps are its own.)
NATIVE_TEST(expert_parallel_checkpoint_resumes_elsewhere) {
  for (const auto& config : {switch_moe(), sinkhorn_moe()}) {
    const auto saved = on_ranks({config, 2, true, 0, 2})[0].state;
    Plan next{config, 1, false, 2, 0};
    next.resume = &saved;
    EXPECT(same_bits(on_ranks(next)[0].state, saved), "loaded on 1 rank: not the EP run's state");
    next.world = 2, next.steps = 2, next.expert_parallel = true;
    const auto ep = on_ranks(next)[0];
    next.expert_parallel = false;
    const auto dp = on_ranks(next)[0];
    EXPECT(dp.losses == ep.losses && dp.counts == ep.counts && same_bits(dp.state, ep.state),
           "resumed on 2 plain ranks: differs from EP");
    next.world = 4;
    const auto dp4 = on_ranks(next)[0];
    next.expert_parallel = true;
    const auto ep4 = on_ranks(next)[0];
    EXPECT(dp4.losses == ep4.losses && dp4.counts == ep4.counts && same_bits(dp4.state, ep4.state),
           "resumed on 4 ranks: EP differs from plain");
  }
  return "EP checkpoint at step 2: on 1 rank the same bits; 2 more steps on 2 plain ranks bit-identical to EP; "
         "on 4 ranks EP bit-identical to plain";
}

namespace {

// Each kind of parameter buffer of an EP rank against one whole model's: the same bytes for the
// tensors that are not experts, the experts' 1/world. Returns "weights 1/2, ..." as measured.
std::string holds_its_experts(const ml::ParamMemory& rank, const ml::ParamMemory& whole, int world,
                              const std::string& at) {
  std::string out;
  const std::pair<const char*, ml::ParamMemory::Held ml::ParamMemory::*> kinds[] = {
      {"weights", &ml::ParamMemory::weights},
      {"gradients", &ml::ParamMemory::gradients},
      {"moments", &ml::ParamMemory::moments}};
  for (const auto& [name, kind] : kinds) {
    const ml::ParamMemory::Held &r = rank.*kind, &w = whole.*kind;
    EXPECT(w.experts > 0 && w.experts < w.bytes, at, ": the whole model's ", name, " are ", w.bytes,
           " bytes, its experts' ", w.experts);
    EXPECT(r.bytes - r.experts == w.bytes - w.experts, at, ": ", name, " of the other tensors ", r.bytes - r.experts,
           " bytes, whole ", w.bytes - w.experts);
    EXPECT(r.experts * world == w.experts, at, ": ", name, " of experts ", r.experts, " bytes on the rank, ",
           w.experts, " whole");
    out += str(out.empty() ? "" : ", ", name, " ", r.bytes, " of ", w.bytes, " (experts ", r.experts, ")");
  }
  EXPECT(rank.expert_sources == 0, at, ": ", rank.expert_sources, " bytes of other ranks' expert gradients kept");
  return out;
}

}  // namespace

// Memory, from the runtime's account of its buffers: a rank that joins before its first step
// holds nothing until then (its parameters are made at that step, its block of the experts
// alone); after a step (2 micro-batches, whose other ranks' expert gradients are kept apart for
// the step only) its weights, gradients and moments of experts are 1/N of a whole model's and
// the rest equal; a rank whose parameters were made whole before joining drops the others'
// experts when it joins, keeping its block's bits.
NATIVE_TEST(expert_parallel_rank_holds_its_experts_alone) {
  std::string detail;
  for (const auto& config : {switch_moe(), sinkhorn_moe()}) {
    const ml::ParamMemory whole = on_ranks({config, 1, false, 0, 1, 2})[0].trained;
    for (const int world : {2, 4}) {
      const auto ranks = on_ranks({config, world, true, 0, 1, 2});
      for (int r = 0; r < world; ++r) {
        const std::string at = str(config.moe.router.kind == ml::RouterKind::Switch ? "switch" : "sinkhorn", " world ",
                                   world, " rank ", r);
        const ml::ParamMemory& joined = ranks[size_t(r)].joined;
        EXPECT(joined.weights.bytes == 0 && joined.gradients.bytes == 0, at, ": ", joined.weights.bytes,
               " bytes of weights made before the first step");
        const std::string held = holds_its_experts(ranks[size_t(r)].trained, whole, world, at);
        if (r == 0 && config.moe.router.kind == ml::RouterKind::Switch) detail += str(world, " ranks: ", held, "; ");
      }
    }
  }
  // Made whole first (a read), then joined: the rank keeps its block, with the bits it had.
  const std::string path = "/tmp/mambalab-test-ep-memory-" + std::to_string(getpid());
  std::vector<std::string> failures(2);
  std::vector<ml::ParamMemory> before(2), after(2);
  std::vector<std::vector<std::vector<double>>> states(2);
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r)
    threads.emplace_back([&, r] {
      try {
        auto rt = ml::make_runtime(switch_moe(), ml::DType::F64);
        const auto initial = read_state(*rt);
        before[size_t(r)] = rt->parameter_memory();
        rt->join_ranks(std::make_shared<ml::SharedMemoryCollective>(path, 13, r, 2, 60), false, true);
        after[size_t(r)] = rt->parameter_memory();
        states[size_t(r)] = read_state(*rt);
        if (!same_bits(states[size_t(r)], initial)) failures[size_t(r)] = "the gathered weights differ from before";
      } catch (const std::exception& e) {
        failures[size_t(r)] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  for (int r = 0; r < 2; ++r) {
    EXPECT(failures[size_t(r)].empty(), "joined after its weights were made, rank ", r, ": ", failures[size_t(r)]);
    EXPECT(after[size_t(r)].weights.experts * 2 == before[size_t(r)].weights.experts &&
               after[size_t(r)].weights.bytes - after[size_t(r)].weights.experts ==
                   before[size_t(r)].weights.bytes - before[size_t(r)].weights.experts,
           "joined after its weights were made, rank ", r, ": ", after[size_t(r)].weights.bytes, " bytes of weights, ",
           before[size_t(r)].weights.bytes, " before");
  }
  return detail + "made whole, then joined on 2 ranks: weights " + std::to_string(before[0].weights.bytes) + " -> " +
         std::to_string(after[0].weights.bytes) + " bytes, the same bits";
}

// A checkpoint written by 4 EP ranks (every rank reading the whole model, gathered in rank order)
// resumes on 4 EP ranks bit for bit as the uninterrupted run continues, and on 2 ranks (EP, and
// plain alike bit for bit) and on 1 rank with the uninterrupted run's next losses to rounding:
// a router that keeps every token (switch top-1, dropless) and no load-balancing loss make each
// token's loss and gradient the same however the batch is split, and only the order of the sums
// over the ranks differs. The resumed EP ranks load their own experts alone.
NATIVE_TEST(expert_parallel_checkpoint_from_4_ranks_resumes_on_2_and_1) {
  ml::ModelConfig config = switch_moe();
  config.moe.router.capacity_factor = 0, config.moe.router.aux_weight = 0;
  const double tolerance = 1e-12;
  const auto straight = on_ranks({config, 4, true, 0, 4})[0];
  const auto writers = on_ranks({config, 4, true, 0, 2});
  for (int r = 1; r < 4; ++r)
    EXPECT(same_bits(writers[size_t(r)].state, writers[0].state), "writing: rank ", r, " read another model");
  const auto& saved = writers[0].state;
  Plan next{config, 4, true, 2, 2};
  next.resume = &saved;
  const auto four = on_ranks(next)[0];
  EXPECT(four.losses == std::vector<double>(straight.losses.begin() + 2, straight.losses.end()) &&
             same_bits(four.state, straight.state),
         "resumed on 4 EP ranks: not the uninterrupted run");
  double worst = 0;
  std::vector<Run> resumed;
  for (const auto& [world, ep] : {std::pair{2, true}, std::pair{2, false}, std::pair{1, false}}) {
    next.world = world, next.expert_parallel = ep;
    const auto runs = on_ranks(next);
    resumed.push_back(runs[0]);
    for (size_t s = 0; s < 2; ++s)
      worst = std::max(worst, std::abs(runs[0].losses[s] - straight.losses[s + 2]) / straight.losses[s + 2]);
    if (ep)
      for (int r = 0; r < world; ++r)
        EXPECT(runs[size_t(r)].joined.weights.bytes == 0 &&
                   runs[size_t(r)].trained.weights.experts * 2 == four.trained.weights.experts * 4,
               "resumed on ", world, " EP ranks, rank ", r, ": ", runs[size_t(r)].trained.weights.experts,
               " bytes of expert weights");
  }
  EXPECT(worst < tolerance, "next losses after resuming on 2 and 1 ranks differ by ", worst);
  EXPECT(resumed[0].losses == resumed[1].losses && same_bits(resumed[0].state, resumed[1].state),
         "resumed on 2 ranks: EP differs from plain");
  return str("saved at step 2 on 4 EP ranks: resumed on 4 EP bit-identical; on 2 (EP = plain, bit for bit) and on 1 "
             "the next 2 losses within ",
             worst, " (relative; weights after them within ", state_difference(resumed[2].state, straight.state), ")");
}

// Refused by name before anything changes: experts that do not split over the ranks, a model
// without MoE layers, and expert parallel with the optimizer sharded.
NATIVE_TEST(expert_parallel_refuses_what_it_cannot_share) {
  const std::string path = "/tmp/mambalab-test-ep-refuse-" + std::to_string(getpid());
  std::vector<std::string> errors(3);
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r)
    threads.emplace_back([&, r] {
      auto collective = std::make_shared<ml::SharedMemoryCollective>(path, 12, r, 2, 20);
      ml::ModelConfig three = switch_moe();
      three.moe.num_experts = 3;
      ml::ModelConfig dense = switch_moe();
      dense.layers = {{'M'}, {'F'}}, dense.mlp = {ml::FfnKind::Gelu, 24};
      const std::string e0 = error_of([&] { ml::make_runtime(three, ml::DType::F64)->join_ranks(collective, false, true); });
      const std::string e1 = error_of([&] { ml::make_runtime(dense, ml::DType::F64)->join_ranks(collective, false, true); });
      const std::string e2 = error_of([&] { ml::make_runtime(switch_moe(), ml::DType::F64)->join_ranks(collective, true, true); });
      if (r == 0) errors = {e0, e1, e2};
    });
  for (auto& t : threads) t.join();
  EXPECT(errors[0].find("expert parallel: num_experts 3 does not split into 2 ranks") != std::string::npos, errors[0]);
  EXPECT(errors[1].find("expert parallel: the model has no mixture-of-experts layer") != std::string::npos, errors[1]);
  EXPECT(errors[2].find("expert parallel: not with the optimizer sharded") != std::string::npos, errors[2]);
  return errors[0] + " | " + errors[1] + " | " + errors[2];
}
