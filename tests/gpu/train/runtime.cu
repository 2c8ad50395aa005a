// The GPU runtime against the CPU model: same weights, same batch, loss and every gradient;
// training steps; bit-identical deterministic runs; out-of-memory errors.
#include <unistd.h>

#include <cstring>
#include <memory>
#include <thread>

#include "dist/shared_memory.h"
#include "gpu/gpu_test.h"
#include "train/runtime.h"

using namespace gputest;

namespace {

ml::ModelConfig lm_config(std::vector<ml::LayerSpec> layers) {
  ml::ModelConfig c;
  c.vocab_size = 97, c.pad_vocab_multiple = 8, c.d_model = 32, c.layers = std::move(layers), c.seed = 5;
  c.mamba.d_model = 32;  // d_inner 64, d_state 16, dt_rank 2
  c.mlp = {ml::FfnKind::Gelu, 48};
  c.moe.num_experts = 4, c.moe.expert = {ml::FfnKind::Gelu, 40};
  c.moe.router.capacity_factor = 1.0;
  return c;
}

std::vector<int32_t> random_tokens(uint64_t seed, int64_t n, int64_t vocab) {
  ml::Rng rng(seed);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = int32_t(rng.next_u64() % uint64_t(vocab));
  return t;
}

ml::RuntimeOptions cuda_options(ml::Precision precision, bool deterministic = true) {
  return {ml::Device::Cuda, precision, deterministic};
}

std::vector<float> read(ml::Runtime& rt, const ml::ParamInfo& p, ml::Slot slot) {
  std::vector<float> out(size_t(ml::shape_numel(p.shape)));
  rt.read(p.name, slot, out.data(), out.size() * sizeof(float));
  return out;
}

// The GPU model's weights copied into a CPU model of `dtype`, so both compute from the same values.
void copy_weights(ml::Runtime& from, ml::Runtime& to) {
  for (const auto& p : from.params()) {
    const auto v = read(from, p, ml::Slot::Value);
    if (to.dtype() == ml::DType::F32) {
      to.write(p.name, ml::Slot::Value, v.data(), v.size() * sizeof(float));
    } else {
      const std::vector<double> d(v.begin(), v.end());
      to.write(p.name, ml::Slot::Value, d.data(), d.size() * sizeof(double));
    }
  }
}

std::vector<double> read_double(ml::Runtime& rt, const ml::ParamInfo& p, ml::Slot slot) {
  std::vector<double> out(size_t(ml::shape_numel(p.shape)));
  rt.read(p.name, slot, out.data(), out.size() * sizeof(double));
  return out;
}

template <typename T>
std::string check_loss_and_gradients(const std::vector<ml::LayerSpec>& layers, ml::Precision precision, double bound) {
  const auto config = lm_config(layers);
  auto gpu = ml::make_runtime(config, ml::DType::F32, cuda_options(precision));
  auto cpu = ml::make_runtime(config, ml::DType::F64);
  copy_weights(*gpu, *cpu);
  const int64_t batch = 3, len1 = 38;  // 37 steps: not a multiple of the scan's chunk
  const auto tokens = random_tokens(11, batch * len1, config.vocab_size);
  const auto want = cpu->loss_and_gradients(tokens.data(), batch, len1);
  const auto got = gpu->loss_and_gradients(tokens.data(), batch, len1);

  Errors errors(bound);
  errors.add("loss", {got.loss + got.aux_loss}, {want.loss + want.aux_loss});
  for (size_t l = 0; l < want.experts.size(); ++l) {
    const auto& w = want.experts[l];
    const auto& g = got.experts.at(l);
    if (g.counts != w.counts || g.dropped != w.dropped)
      throw mltest::Failure("expert counts of MoE layer " + std::to_string(l) + " differ from the CPU's");
  }
  for (const auto& p : gpu->params()) {
    const auto g = read(*gpu, p, ml::Slot::Grad);
    errors.add(p.name, std::vector<double>(g.begin(), g.end()), read_double(*cpu, p, ml::Slot::Grad));
  }
  return ml::describe_layers(layers) + ": " + errors.report();
}

}  // namespace

NATIVE_TEST(cuda_lm_mamba_fp32_matches_cpu) {
  return check_loss_and_gradients<float>({{'M'}, {'M'}}, ml::Precision::FP32, 1e-5);
}
NATIVE_TEST(cuda_lm_mamba_bf16_matches_cpu) {
  return check_loss_and_gradients<bf16>({{'M'}, {'M'}}, ml::Precision::BF16, 3e-2);
}
NATIVE_TEST(cuda_lm_moe_mamba_fp32_matches_cpu) {
  return check_loss_and_gradients<float>({{'M'}, {'E'}}, ml::Precision::FP32, 1e-5);
}
NATIVE_TEST(cuda_lm_parallel_and_mlp_fp32_matches_cpu) {
  return check_loss_and_gradients<float>({{'M', 'E'}, {'F'}}, ml::Precision::FP32, 1e-5);
}

// Five AdamW steps on both backends from the same weights: losses and weights agree.
NATIVE_TEST(cuda_train_steps_match_cpu) {
  const auto config = lm_config({{'M'}, {'M'}});
  auto gpu = ml::make_runtime(config, ml::DType::F32, cuda_options(ml::Precision::FP32));
  auto cpu = ml::make_runtime(config, ml::DType::F32);
  copy_weights(*gpu, *cpu);
  const ml::OptimizerConfig opt{0.9, 0.95, 1e-8, 0.1, 0.5};
  Errors errors(1e-4);
  for (int step = 0; step < 5; ++step) {
    const auto tokens = random_tokens(40 + step, 2 * 65, config.vocab_size);
    const auto want = cpu->train_step(tokens.data(), 2, 65, 3e-3, opt, 1);
    const auto got = gpu->train_step(tokens.data(), 2, 65, 3e-3, opt, 1);
    errors.add("loss " + std::to_string(step), {got.loss}, {want.loss});
    errors.add("grad norm " + std::to_string(step), {got.grad_norm}, {want.grad_norm});
  }
  for (const auto& p : gpu->params()) {
    const auto g = read(*gpu, p, ml::Slot::Value), w = read(*cpu, p, ml::Slot::Value);
    errors.add(p.name, std::vector<double>(g.begin(), g.end()), std::vector<double>(w.begin(), w.end()));
  }
  return errors.report();
}

// Deterministic mode: two runs from the same seed give the same bits, losses and weights.
NATIVE_TEST(cuda_deterministic_training_is_bit_identical) {
  const auto config = lm_config({{'M'}, {'E'}, {'M'}});
  std::vector<std::vector<float>> losses(2), weights(2);
  for (int run = 0; run < 2; ++run) {
    auto rt = ml::make_runtime(config, ml::DType::F32, cuda_options(ml::Precision::BF16, true));
    for (int step = 0; step < 4; ++step) {
      const auto tokens = random_tokens(70 + step, 4 * 129, config.vocab_size);
      losses[run].push_back(float(rt->train_step(tokens.data(), 4, 129, 1e-3, {}, 1).loss));
    }
    for (const auto& p : rt->params()) {
      const auto v = read(*rt, p, ml::Slot::Value);
      weights[run].insert(weights[run].end(), v.begin(), v.end());
    }
  }
  EXPECT(std::memcmp(losses[0].data(), losses[1].data(), losses[0].size() * sizeof(float)) == 0, "losses differ: ",
         losses[0].back(), " vs ", losses[1].back());
  EXPECT(std::memcmp(weights[0].data(), weights[1].data(), weights[0].size() * sizeof(float)) == 0,
         "weights differ after 4 steps");
  return mltest::str("4 steps, ", weights[0].size(), " weights bit-identical; last loss ", losses[0].back());
}

namespace {

// Each step's loss, then every weight and (gathered) moment, of rank `rank` of `world` CUDA
// models on this GPU meeting through shared memory (threads, as processes of `train --ranks` on
// one GPU), optimizer sharded or not; and the bytes of moments the rank held.
std::pair<std::vector<float>, int64_t> cuda_rank(const ml::ModelConfig& config, int rank, int world, bool shard) {
  auto rt = ml::make_runtime(config, ml::DType::F32, cuda_options(ml::Precision::BF16, true));
  const std::string path = "/dev/shm/mambalab-gpu-test-zero1-" + std::to_string(getpid()) + (shard ? "-s" : "-u");
  rt->join_ranks(std::make_shared<ml::SharedMemoryCollective>(path, 3, rank, world, 60), shard, false);
  ml::OptimizerConfig opt;
  opt.grad_clip = 0.05;
  std::vector<float> out;
  for (int step = 0; step < 3; ++step) {
    const auto tokens = random_tokens(90 + step, 4 * 65, config.vocab_size);
    out.push_back(float(rt->train_step(tokens.data() + rank * (4 / world) * 65, 4 / world, 65, 1e-3, opt, 1).loss));
  }
  for (const auto& p : rt->params())
    for (const ml::Slot slot : {ml::Slot::Value, ml::Slot::FirstMoment, ml::Slot::SecondMoment}) {
      const auto v = read(*rt, p, slot);
      out.insert(out.end(), v.begin(), v.end());
    }
  return {out, rt->optimizer_state_bytes()};
}

}  // namespace

// The sharded optimizer on the GPU (bf16, deterministic): 2 ranks on this GPU updating their own
// share each (AdamW on parts of tensors, the bf16 copy refreshed after the gather) end with the
// losses, weights and moments of the same 2 ranks unsharded, bit for bit, holding half the moments.
NATIVE_TEST(cuda_sharded_optimizer_is_bit_identical) {
  const auto config = lm_config({{'M'}, {'E'}, {'M'}});
  std::vector<std::pair<std::vector<float>, int64_t>> got(4);
  std::vector<std::string> errors(4);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&, i] {
      try {
        got[size_t(i)] = cuda_rank(config, i % 2, 2, i >= 2);
      } catch (const std::exception& e) {
        errors[size_t(i)] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  for (const auto& e : errors) EXPECT(e.empty(), e);
  for (int r = 0; r < 2; ++r) {
    const auto &plain = got[size_t(r)], &sharded = got[size_t(r) + 2];
    EXPECT(plain.first.size() == sharded.first.size() &&
               std::memcmp(plain.first.data(), sharded.first.data(), plain.first.size() * sizeof(float)) == 0,
           "rank ", r, ": losses, weights or moments differ from unsharded");
    EXPECT(sharded.second * 2 <= plain.second + 64 * 8 && sharded.second * 2 >= plain.second - 64 * 8, "rank ", r,
           " holds ", sharded.second, " bytes of moments sharded, ", plain.second, " unsharded");
  }
  return mltest::str("2 ranks on one GPU, 3 steps: sharded bit-identical to unsharded; moments ", got[2].second, " + ",
                     got[3].second, " bytes instead of ", got[0].second, " each");
}

// K micro-batches make one batch's update on the GPU too (fp32, deterministic: to rounding).
NATIVE_TEST(cuda_train_step_micro_batches_match_one_batch) {
  const auto config = lm_config({{'M'}, {'F'}});
  const auto tokens = random_tokens(61, 8 * 65, config.vocab_size);
  ml::OptimizerConfig opt;
  opt.grad_clip = 0.05;
  std::vector<std::vector<float>> weights;
  for (const int64_t k : {1, 2, 4}) {
    auto rt = ml::make_runtime(config, ml::DType::F32, cuda_options(ml::Precision::FP32));
    const auto m = rt->train_step(tokens.data(), 8, 65, 1e-2, opt, k);
    EXPECT(!m.skipped && rt->steps_done() == 1, "k=", k, ": skipped or not counted");
    weights.emplace_back();
    for (const auto& p : rt->params()) {
      const auto v = read(*rt, p, ml::Slot::Value);
      weights.back().insert(weights.back().end(), v.begin(), v.end());
    }
  }
  Errors errors(1e-6);
  for (size_t k = 1; k < weights.size(); ++k)
    errors.add(mltest::str("weights, ", 1 << k, " micro-batches"), {weights[k].begin(), weights[k].end()},
               {weights[0].begin(), weights[0].end()});
  return errors.report();
}

// A non-finite step is skipped on the device, replayed graph or not: no weight or moment
// changes, and the step does not count.
NATIVE_TEST(cuda_train_step_skips_non_finite_steps) {
  const auto config = lm_config({{'M'}, {'E'}, {'M'}});
  auto rt = ml::make_runtime(config, ml::DType::F32, cuda_options(ml::Precision::BF16));
  const auto tokens = random_tokens(62, 4 * 65, config.vocab_size);
  for (int step = 0; step < 3; ++step) rt->train_step(tokens.data(), 4, 65, 1e-3, {}, 1);  // captured by now
  const auto params = rt->params();
  const auto& embedding = params.front();
  auto poisoned = read(*rt, embedding, ml::Slot::Value);
  const float kept = poisoned[size_t(tokens[0]) * size_t(embedding.shape[1])];
  poisoned[size_t(tokens[0]) * size_t(embedding.shape[1])] = NAN;
  rt->write(embedding.name, ml::Slot::Value, poisoned.data(), poisoned.size() * sizeof(float));
  auto state = [&] {
    std::vector<float> all;
    for (const auto& p : params)
      for (const auto slot : {ml::Slot::Value, ml::Slot::FirstMoment, ml::Slot::SecondMoment}) {
        const auto v = read(*rt, p, slot);
        all.insert(all.end(), v.begin(), v.end());
      }
    return all;
  };
  const auto before = state();
  int replayed = 0;
  for (int step = 0; step < 3; ++step) {
    const auto m = rt->train_step(tokens.data(), 4, 65, 1e-3, {}, 1);
    EXPECT(m.skipped && !std::isfinite(m.loss), "step ", step, ": a NaN loss was applied");
    replayed += m.cuda_graph;
  }
  const auto after = state();
  EXPECT(std::memcmp(before.data(), after.data(), before.size() * sizeof(float)) == 0, "skipped steps changed state");
  EXPECT(rt->steps_done() == 3, "skipped steps counted: ", rt->steps_done());
  poisoned[size_t(tokens[0]) * size_t(embedding.shape[1])] = kept;
  rt->write(embedding.name, ml::Slot::Value, poisoned.data(), poisoned.size() * sizeof(float));
  const auto m = rt->train_step(tokens.data(), 4, 65, 1e-3, {}, 1);
  EXPECT(!m.skipped && std::isfinite(m.loss) && rt->steps_done() == 4, "the next finite step runs and counts");
  return mltest::str("3 NaN steps skipped (", replayed, " replayed graphs), state unchanged");
}

NATIVE_TEST(cuda_out_of_memory_names_the_config_and_an_estimate) {
  auto config = lm_config({{'M'}});
  config.d_model = config.mamba.d_model = 1024;
  auto rt = ml::make_runtime(config, ml::DType::F32, cuda_options(ml::Precision::BF16));
  const int64_t batch = 2048, len1 = 4097;  // 8M tokens: ~250 GiB of activations for one layer
  const std::vector<int32_t> tokens(size_t(batch * len1), 1);
  try {
    rt->train_step(tokens.data(), batch, len1, 1e-3, {}, 1);
  } catch (const ml::Error& e) {
    const std::string what = e.what();
    EXPECT(what.find("out of GPU memory") == 0 && what.find("d_model 1024") != std::string::npos &&
               what.find("GiB") != std::string::npos,
           "message: ", what);
    // The model still works after the failure.
    const std::vector<int32_t> small(2 * 9, 3);
    const auto m = rt->train_step(small.data(), 2, 9, 1e-3, {}, 1);
    EXPECT(std::isfinite(m.loss), "loss after out-of-memory ", m.loss);
    return what.substr(0, 200);
  }
  throw mltest::Failure("a 4M-token batch of d_model 1024 did not run out of memory");
}

namespace {

struct Trace {
  std::vector<float> losses, weights;
  std::vector<bool> replayed;
};

// Six steps with an evaluation after the third: graphs are captured on the second step at a
// shape, replayed after, dropped by the evaluation and captured again.
Trace train_with_evaluation(const ml::ModelConfig& config, bool graphs) {
  ml::RuntimeOptions options = cuda_options(ml::Precision::BF16, true);
  options.cuda_graphs = graphs;
  auto rt = ml::make_runtime(config, ml::DType::F32, options);
  Trace t;
  for (int step = 0; step < 6; ++step) {
    const auto tokens = random_tokens(90 + step, 4 * 65, config.vocab_size);
    const auto m = rt->train_step(tokens.data(), 4, 65, 1e-3, {}, 1);
    t.losses.push_back(float(m.loss));
    t.replayed.push_back(m.cuda_graph);
    if (step == 2) t.losses.push_back(float(rt->evaluate(tokens.data(), 4, 65).loss));
  }
  for (const auto& p : rt->params()) {
    const auto v = read(*rt, p, ml::Slot::Value);
    t.weights.insert(t.weights.end(), v.begin(), v.end());
  }
  return t;
}

std::string check_graphs(const ml::ModelConfig& config, const std::vector<bool>& want_replayed) {
  const Trace graphs = train_with_evaluation(config, true), eager = train_with_evaluation(config, false);
  EXPECT(graphs.replayed == want_replayed, ml::describe_layers(config.layers),
         ": replayed steps differ from the expected pattern");
  for (bool r : eager.replayed) EXPECT(!r, "a step replayed a graph with graphs off");
  EXPECT(std::memcmp(graphs.losses.data(), eager.losses.data(), graphs.losses.size() * sizeof(float)) == 0,
         ml::describe_layers(config.layers), ": losses differ between graph replay and eager steps");
  EXPECT(graphs.weights == eager.weights, ml::describe_layers(config.layers),
         ": weights differ between graph replay and eager steps");
  return ml::describe_layers(config.layers) + ": 6 steps and an evaluation bit-identical with and without graphs";
}

}  // namespace

NATIVE_TEST(cuda_graph_replay_matches_eager_steps) {
  return check_graphs(lm_config({{'M'}, {'E'}, {'M'}}), {false, true, true, false, true, true});
}

NATIVE_TEST(cuda_graphs_skip_models_that_sync_mid_step) {
  auto config = lm_config({{'M'}, {'E'}});
  config.moe.router.capacity_factor = 0;  // dropless: counts are read on the host each forward
  return check_graphs(config, std::vector<bool>(6, false));
}
