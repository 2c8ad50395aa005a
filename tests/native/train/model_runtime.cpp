// The runtime with its optimizer sharded over data-parallel ranks (ZeRO-1: train/step.h,
// dist/shards.h): the same ranks take bit for bit the steps they take unsharded, each holding
// AdamW moments for its share alone, and a moment read gathers the whole tensor on every rank.
#include <unistd.h>

#include <cstring>
#include <memory>
#include <thread>

#include "../harness.h"
#include "dist/shared_memory.h"
#include "dist/shards.h"
#include "train/runtime.h"

using namespace mltest;

namespace {

ml::ModelConfig mamba_mlp() {
  ml::ModelConfig c;
  c.vocab_size = 50, c.d_model = 16, c.layers = {{'M'}, {'F'}}, c.seed = 4;
  c.mamba.d_model = 16, c.mlp = {ml::FfnKind::Gelu, 24};
  return c;
}

ml::ModelConfig moe_mamba() {
  ml::ModelConfig c = mamba_mlp();
  c.layers = {{'M'}, {'E'}, {'M'}, {'E'}};
  c.moe.num_experts = 3, c.moe.expert = {ml::FfnKind::SwiGLU, 12}, c.moe.router.kind = ml::RouterKind::Switch;
  c.moe.router.capacity_factor = 1.25, c.moe.router_bias = true;
  return c;
}

// What a rank ends with: each step's loss and gradient norm, then every tensor's weights, first
// and second moments (read through the runtime: collective when sharded), as bytes; and the
// bytes of moments it held.
struct Replica {
  std::vector<unsigned char> trace, state;
  int64_t optimizer_bytes = 0;
};

template <typename T>
void append(std::vector<unsigned char>& out, const T* values, size_t n) {
  const auto* raw = reinterpret_cast<const unsigned char*>(values);
  out.insert(out.end(), raw, raw + n * sizeof(T));
}

template <typename T>
Replica train(const ml::ModelConfig& config, ml::DType dtype, int rank, int world, bool shard, int64_t micro,
              const std::string& path) {
  auto rt = ml::make_runtime(config, dtype);
  if (world > 1) rt->join_ranks(std::make_shared<ml::SharedMemoryCollective>(path, 7, rank, world, 60), shard, false);
  const int64_t rows = 12 / world, len_plus_one = 11;
  ml::OptimizerConfig opt;
  opt.grad_clip = 0.05;  // clipping on: each share is scaled by the norm of the whole gradient
  Replica out;
  for (uint64_t s = 0; s < 3; ++s) {
    ml::Rng rng(120 + s);
    std::vector<int32_t> batch(size_t(12 * len_plus_one));
    for (auto& t : batch) t = int32_t(rng.next_u64() % 50);
    const auto m = rt->train_step(batch.data() + rank * rows * len_plus_one, rows, len_plus_one, 1e-2, opt, micro);
    EXPECT(m.grad_norm > opt.grad_clip, "step ", s, ": gradient norm ", m.grad_norm, " left clipping off");
    append(out.trace, &m.loss, 1), append(out.trace, &m.grad_norm, 1);
  }
  out.optimizer_bytes = rt->optimizer_state_bytes();
  for (const auto& p : rt->params())
    for (const ml::Slot slot : {ml::Slot::Value, ml::Slot::FirstMoment, ml::Slot::SecondMoment}) {
      std::vector<T> values(size_t(ml::shape_numel(p.shape)));
      rt->read(p.name, slot, values.data(), values.size() * sizeof(T));
      append(out.state, values.data(), values.size());
    }
  return out;
}

// Every rank of `world` on its own thread; their replicas, in rank order.
template <typename T>
std::vector<Replica> ranks(const ml::ModelConfig& config, ml::DType dtype, int world, bool shard, int64_t micro) {
  const std::string path = "/tmp/mambalab-test-zero1-" + std::to_string(getpid());
  std::vector<Replica> out(static_cast<size_t>(world));
  std::vector<std::string> failures(static_cast<size_t>(world));
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r)
    threads.emplace_back([&, r] {
      try {
        out[size_t(r)] = train<T>(config, dtype, r, world, shard, micro, path);
      } catch (const std::exception& e) {
        failures[size_t(r)] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  for (const auto& f : failures) EXPECT(f.empty(), f);
  return out;
}

// The padded length of the model's flat parameter buffers (nn/params.h).
int64_t flat_total(const ml::ModelConfig& config) {
  int64_t total = 0;
  for (const auto& p : ml::make_runtime(config, ml::DType::F64)->params())
    total += (ml::shape_numel(p.shape) + 63) / 64 * 64;
  return total;
}

template <typename T>
std::string sharded_matches_unsharded(const ml::ModelConfig& config, ml::DType dtype, const char* name) {
  const int64_t total = flat_total(config);
  for (const int world : {2, 3})
    for (const int64_t micro : {1, 2}) {
      const auto plain = ranks<T>(config, dtype, world, false, micro);
      const auto sharded = ranks<T>(config, dtype, world, true, micro);
      const auto bounds = ml::shard_bounds(total, world);
      for (int r = 0; r < world; ++r) {
        const Replica &a = plain[size_t(r)], &b = sharded[size_t(r)];
        EXPECT(a.trace == b.trace, name, " world ", world, " micro ", micro, " rank ", r, ": losses or norms differ");
        EXPECT(a.state == b.state, name, " world ", world, " micro ", micro, " rank ", r,
               ": weights or moments differ from unsharded");
        EXPECT(b.state == sharded[0].state, name, " world ", world, ": rank ", r, " differs from rank 0");
        EXPECT(a.optimizer_bytes == 2 * total * int64_t(sizeof(T)), "unsharded rank ", r, " holds ", a.optimizer_bytes);
        const int64_t share = bounds[size_t(r) + 1] - bounds[size_t(r)];
        EXPECT(b.optimizer_bytes == 2 * share * int64_t(sizeof(T)), name, " world ", world, " rank ", r, " holds ",
               b.optimizer_bytes, " bytes of moments, its share is ", share, " elements");
      }
    }
  return str(name, ": ", total, " elements, 2 and 3 ranks x 1 and 2 micro-batches: bit-identical");
}

}  // namespace

// Mamba + MLP and MoE-Mamba, fp64 and fp32, 3 steps with clipping on: the sharded ranks' losses,
// norms, weights and (gathered) moments are those of the same ranks unsharded, bit for bit, and
// each rank holds 2 · its share of moments instead of 2 · all of them.
NATIVE_TEST(runtime_sharded_optimizer_is_bit_identical_and_holds_its_share) {
  std::string out = sharded_matches_unsharded<double>(mamba_mlp(), ml::DType::F64, "M+F fp64");
  out += "; " + sharded_matches_unsharded<float>(mamba_mlp(), ml::DType::F32, "M+F fp32");
  out += "; " + sharded_matches_unsharded<double>(moe_mamba(), ml::DType::F64, "MoE fp64");
  out += "; " + sharded_matches_unsharded<float>(moe_mamba(), ml::DType::F32, "MoE fp32");
  return out;
}

// Moments are made at the first step, or when written; a rank that joins sharded before then
// never holds more than its share, and one that joins after keeps its share of what it had.
NATIVE_TEST(runtime_makes_moments_when_first_needed) {
  const auto config = mamba_mlp();
  const int64_t total = flat_total(config);
  auto rt = ml::make_runtime(config, ml::DType::F64);
  EXPECT(rt->optimizer_state_bytes() == 0, "moments made before any step: ", rt->optimizer_state_bytes());
  const auto p = rt->params().back();
  std::vector<double> m(size_t(ml::shape_numel(p.shape)), 1.0);
  rt->read(p.name, ml::Slot::FirstMoment, m.data(), m.size() * sizeof(double));
  EXPECT(m[0] == 0 && m.back() == 0 && rt->optimizer_state_bytes() == 0, "reading made them, or read non-zeros");
  std::fill(m.begin(), m.end(), 0.5);
  rt->write(p.name, ml::Slot::FirstMoment, m.data(), m.size() * sizeof(double));
  EXPECT(rt->optimizer_state_bytes() == 2 * total * 8, "writing one made ", rt->optimizer_state_bytes(), " bytes");
  // Sharded over 2 ranks, rank 1 holds the end of the buffers, so the last tensor's moments.
  std::vector<std::string> failures(2);
  std::vector<int64_t> bytes(2);
  std::vector<std::vector<double>> read(2, std::vector<double>(m.size()));
  std::vector<std::unique_ptr<ml::Runtime>> rts(2);
  rts[0] = ml::make_runtime(config, ml::DType::F64), rts[1] = std::move(rt);
  const std::string path = "/tmp/mambalab-test-zero1-made-" + std::to_string(getpid());
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r)
    threads.emplace_back([&, r] {
      try {
        rts[size_t(r)]->join_ranks(std::make_shared<ml::SharedMemoryCollective>(path, 9, r, 2, 60), true, false);
        bytes[size_t(r)] = rts[size_t(r)]->optimizer_state_bytes();
        rts[size_t(r)]->read(p.name, ml::Slot::FirstMoment, read[size_t(r)].data(), m.size() * sizeof(double));
      } catch (const std::exception& e) {
        failures[size_t(r)] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  for (const auto& f : failures) EXPECT(f.empty(), f);
  const auto bounds = ml::shard_bounds(total, 2);
  EXPECT(bytes[0] == 0, "rank 0 made moments on joining: ", bytes[0]);
  EXPECT(bytes[1] == 2 * (bounds[2] - bounds[1]) * 8, "rank 1 kept ", bytes[1], " bytes");
  EXPECT(read[0] == m && read[1] == m, "the written moment, gathered from rank 1, differs");
  return str("none before a step or a write; sharded, rank 1 kept ", bytes[1], " of ", 2 * total * 8, " bytes");
}
