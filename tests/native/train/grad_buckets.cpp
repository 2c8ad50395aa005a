// Gradient buckets (train/grad_buckets.h, train/step.h): data-parallel ranks sum their gradients
// bucket by bucket while the backward runs, and get the bits of one sum after it.
#include "train/grad_buckets.h"

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <thread>

#include "../harness.h"
#include "dist/shared_memory.h"
#include "nn/cpu_backend.h"
#include "train/step.h"

using namespace mltest;

namespace {

bool same_ranges(const std::vector<ml::GradRange>& got, const std::vector<ml::GradRange>& want) {
  if (got.size() != want.size()) return false;
  for (size_t i = 0; i < got.size(); ++i)
    if (got[i].begin != want[i].begin || got[i].end != want[i].end) return false;
  return true;
}

// The ranges sorted, with those that touch joined; empty when two overlap.
std::vector<ml::GradRange> joined(std::vector<ml::GradRange> ranges) {
  std::sort(ranges.begin(), ranges.end(), [](const auto& a, const auto& b) { return a.begin < b.begin; });
  std::vector<ml::GradRange> out;
  for (const auto& r : ranges) {
    if (!out.empty() && r.begin < out.back().end) return {};
    if (!out.empty() && r.begin == out.back().end)
      out.back().end = r.end;
    else
      out.push_back(r);
  }
  return out;
}

}  // namespace

// Finished gradients wait until a bucket's bytes are ready, skipping what is not summed; the
// end of the backward hands out the rest; a bucket of 0 bytes is the whole buffer at the end.
NATIVE_TEST(grad_buckets_hand_out_finished_ranges) {
  const std::vector<ml::GradRange> summed{{0, 100}, {164, 300}, {364, 500}};  // [100, 164), [300, 364) not summed
  ml::GradientBuckets buckets(summed, 8, 800);                                   // 100 doubles
  EXPECT(buckets.final_from(450).empty(), "50 elements made a bucket");
  EXPECT(same_ranges(buckets.final_from(380), {{380, 500}}), "120 elements: one bucket");
  EXPECT(buckets.final_from(364).empty(), "16 elements made a bucket");
  EXPECT(same_ranges(buckets.final_from(200), {{200, 300}, {364, 380}}), "116 elements across a gap: one bucket");
  EXPECT(same_ranges(buckets.final_from(0), {{0, 100}, {164, 200}}), "the end: the rest");
  ml::GradientBuckets one(summed, 8, 0);
  for (const int64_t offset : {450, 200, 100})
    EXPECT(one.final_from(offset).empty(), "a bucket of 0 bytes handed out a range at ", offset);
  EXPECT(same_ranges(one.final_from(0), summed), "a bucket of 0 bytes: everything at the end");
  return "buckets of 100 doubles across unsummed tensors, and one bucket at the end";
}

namespace {

using Cpu64 = ml::CpuBackend<double>;

ml::ModelConfig mamba() {
  ml::ModelConfig c;
  c.vocab_size = 50, c.d_model = 16, c.layers = {{'M'}, {'M'}, {'M'}}, c.seed = 3;
  c.mamba.d_model = 16;
  return c;
}

// MoE-Mamba, switch top-1 with a capacity (tokens dropped), trained expert parallel.
ml::ModelConfig moe() {
  ml::ModelConfig c = mamba();
  c.layers = {{'M'}, {'E'}, {'M'}, {'E'}};
  c.moe.num_experts = 4, c.moe.expert = {ml::FfnKind::Gelu, 12}, c.moe.router.kind = ml::RouterKind::Switch;
  c.moe.router.capacity_factor = 1.0, c.moe.router.aux_weight = 0.01;
  return c;
}

constexpr int64_t kRows = 8, kLenPlusOne = 9;

std::vector<int32_t> batch_of_step(int64_t step) {
  ml::Rng rng(500 + uint64_t(step));
  std::vector<int32_t> batch(size_t(kRows * kLenPlusOne));
  for (auto& t : batch) t = int32_t(rng.next_u64() % 50);
  return batch;
}

// A collective that passes every call to the shared-memory one and logs the sums of gradients:
// which elements of the watched buffer, and the embedding's gradient at that moment.
class Recording final : public ml::Collective {
 public:
  struct Sum {
    ml::GradRange range;
    std::vector<double> embedding;
  };
  struct Call {
    char kind;  // 'g' a sum of gradients, 's' another sum, 'a' an all-to-all
    Sum sum;
  };

  explicit Recording(ml::Collective& inner) : inner_(inner) {}
  // The gradient buffer (n elements), and the embedding's gradient in it.
  void watch(const double* grads, int64_t n, const double* embedding, int64_t embedding_n) {
    grads_ = grads, n_ = n, embedding_ = embedding, embedding_n_ = embedding_n;
  }
  const std::vector<Call>& calls() const { return calls_; }

  int rank() const override { return inner_.rank(); }
  int world() const override { return inner_.world(); }
  void all_reduce_sum(float* data, int64_t n) override {
    calls_.push_back({'s', {}});
    inner_.all_reduce_sum(data, n);
  }
  void all_reduce_sum(double* data, int64_t n) override {
    if (grads_ && data >= grads_ && data < grads_ + n_)
      calls_.push_back({'g', {{data - grads_, data - grads_ + n}, {embedding_, embedding_ + embedding_n_}}});
    else
      calls_.push_back({'s', {}});
    inner_.all_reduce_sum(data, n);
  }
  void all_gather(float* data, const std::vector<int64_t>& bounds) override { inner_.all_gather(data, bounds); }
  void all_gather(double* data, const std::vector<int64_t>& bounds) override { inner_.all_gather(data, bounds); }
  void broadcast(void* data, int64_t bytes, int root) override { inner_.broadcast(data, bytes, root); }
  void all_to_all(const void* send, const std::vector<int64_t>& send_bytes, void* recv,
                  const std::vector<int64_t>& recv_bytes) override {
    calls_.push_back({'a', {}});
    inner_.all_to_all(send, send_bytes, recv, recv_bytes);
  }

 private:
  ml::Collective& inner_;
  const double* grads_ = nullptr;
  const double* embedding_ = nullptr;
  int64_t n_ = 0, embedding_n_ = 0;
  std::vector<Call> calls_;
};

struct Setup {
  ml::ModelConfig config;
  int world;
  bool expert_parallel;
  int64_t micro, bucket_bytes, steps;
};

// What a rank saw and ends with: each step's metrics, then its gradients, weights and moments
// (its own buffers: under expert parallel, its experts' blocks).
struct RankRun {
  std::vector<double> metrics;
  std::vector<double> grads, state;
  std::vector<Recording::Call> calls;  // the last step's
  std::vector<ml::GradRange> summed;   // the buffer but the expert tensors
  ml::GradRange embedding{0, 0};
};

RankRun train(const Setup& s, int rank, ml::Collective& ranks) {
  Cpu64 cpu;
  ml::LanguageModel<Cpu64> model(s.config, cpu);
  ml::TrainStep<Cpu64> step(model, false);
  Recording recording(ranks);
  step.set_collective(&recording, false, s.expert_parallel);
  step.set_bucket_bytes(s.bucket_bytes);
  auto& p = model.params();
  const size_t embedding = p.index("backbone.embedding.weight");
  recording.watch(p.grads(), p.total(), p.grad(embedding), p.spec(embedding).held);
  ml::OptimizerConfig opt;
  opt.grad_clip = 0.05;  // clipping on
  const int64_t rows = kRows / s.world;
  RankRun out;
  for (int64_t i = 0; i < s.steps; ++i) {
    const auto batch = batch_of_step(i);
    const size_t before = recording.calls().size();
    const auto m = step.run(batch.data() + rank * rows * kLenPlusOne, rows, kLenPlusOne, 1e-2, opt, s.micro);
    out.metrics.insert(out.metrics.end(), {m.loss, m.aux_loss, m.grad_norm});
    for (const auto& layer : m.experts) {
      for (const int64_t c : layer.counts) out.metrics.push_back(double(c));
      out.metrics.push_back(double(layer.dropped));
    }
    out.calls.assign(recording.calls().begin() + int64_t(before), recording.calls().end());
  }
  out.grads.assign(p.grads(), p.grads() + p.total());
  const auto moments = p.moments_of(0);
  for (const double* base : {p.master(0), moments.m, moments.v})
    out.state.insert(out.state.end(), base, base + p.total());
  int64_t begin = 0;  // the buffer but the expert tensors' held elements
  for (size_t i = 0; i < p.size(); ++i) {
    const ml::ParamSpec& t = p.spec(i);
    if (!s.expert_parallel || t.experts == 0) continue;
    if (t.offset > begin) out.summed.push_back({begin, t.offset});
    begin = t.offset + t.held;
  }
  out.summed.push_back({begin, p.total()});
  out.embedding = {p.spec(embedding).offset, p.spec(embedding).offset + p.spec(embedding).held};
  return out;
}

std::vector<RankRun> on_ranks(const Setup& s) {
  static int session = 0;
  const std::string path = "/tmp/mambalab-test-buckets-" + std::to_string(getpid());
  const uint64_t id = uint64_t(++session);
  std::vector<RankRun> out(static_cast<size_t>(s.world));
  std::vector<std::string> failures(static_cast<size_t>(s.world));
  std::vector<std::thread> threads;
  for (int r = 0; r < s.world; ++r)
    threads.emplace_back([&, r] {
      try {
        ml::SharedMemoryCollective c(path, id, r, s.world, 60);
        out[size_t(r)] = train(s, r, c);
      } catch (const std::exception& e) {
        failures[size_t(r)] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  for (const auto& f : failures) EXPECT(f.empty(), f);
  return out;
}

bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

// The gradient sums of one step, in the order made.
std::vector<Recording::Sum> gradient_sums(const RankRun& run) {
  std::vector<Recording::Sum> out;
  for (const auto& call : run.calls)
    if (call.kind == 'g') out.push_back(call.sum);
  return out;
}

}  // namespace

// 2 and 4 ranks, a Mamba model and a MoE-Mamba trained expert parallel, one and two micro-batches,
// clipping on: with buckets of one layer each (1 byte), of two or three layers (40 KiB: the
// Mamba layers here hold about 28 KB of gradients each) and the default (the tiny model fits in
// one), fewer sums each, every rank's losses, gradient norms, expert counts, gradients, weights
// and moments after 3 steps are those of one sum after the backward (0 bytes), bit for bit.
NATIVE_TEST(train_step_buckets_match_one_sum_after_the_backward) {
  int compared = 0;
  std::string sums;
  for (const bool experts : {false, true})
    for (const int world : {2, 4})
      for (const int64_t micro : {1, 2}) {
        const Setup one_sum{experts ? moe() : mamba(), world, experts, micro, 0, 3};
        const auto want = on_ranks(one_sum);
        size_t fewer_than = SIZE_MAX;
        for (const int64_t bytes : {int64_t{1}, int64_t{40} << 10, ml::kDefaultBucketBytes}) {
          Setup bucketed = one_sum;
          bucketed.bucket_bytes = bytes;
          const auto got = on_ranks(bucketed);
          const std::string setup =
              str(experts ? "MoE" : "Mamba", " world ", world, " micro ", micro, " bucket ", bytes, " B");
          const size_t count = gradient_sums(got[0]).size();
          EXPECT(count < fewer_than, setup, ": ", count, " sums a step, not fewer than with smaller buckets");
          fewer_than = count;
          if (world == 2 && micro == 1) sums += str(sums.empty() ? "" : ", ", count);
          for (int r = 0; r < world; ++r) {
            const std::string where = str(setup, " rank ", r);
            const RankRun &g = got[size_t(r)], &w = want[size_t(r)];
            EXPECT(same_bits(g.metrics, w.metrics), where, ": metrics differ");
            EXPECT(same_bits(g.grads, w.grads), where, ": gradients differ");
            EXPECT(same_bits(g.state, w.state), where, ": weights or moments differ");
            ++compared;
          }
        }
      }
  return str(compared, " ranks' runs bit-identical to one sum after the backward (sums a step, Mamba then MoE: ", sums,
             ")");
}

// The sums start while the backward runs: with buckets of one layer, the first gradients summed
// are the last layer's (norm_f's with them), while the embedding's gradient is not yet final (its
// value then differs from the one summed at the end); under expert parallel an earlier MoE layer's
// backward exchanges its tokens after it. The buckets come back to front, apart, and cover every
// gradient but the experts' once. Without buckets (0 bytes) one pass follows the backward.
NATIVE_TEST(train_step_sums_buckets_during_the_backward) {
  std::string detail;
  for (const bool experts : {false, true}) {
    const auto runs = on_ranks({experts ? moe() : mamba(), 2, experts, 1, 1, 1});
    for (const RankRun& run : runs) {
      const auto sums = gradient_sums(run);
      EXPECT(sums.size() >= 3, "only ", sums.size(), " gradient sums");
      EXPECT(sums.front().range.begin >= run.embedding.end, "the first bucket starts at ", sums.front().range.begin,
             ", inside the embedding's gradient (ends at ", run.embedding.end, ")");
      EXPECT(sums.back().range.begin == 0, "the last bucket starts at ", sums.back().range.begin);
      EXPECT(sums.front().embedding != sums.back().embedding,
             "the embedding's gradient was final when the first bucket was summed");
      std::vector<ml::GradRange> covered;
      for (const auto& s : sums) covered.push_back(s.range);
      EXPECT(same_ranges(joined(covered), run.summed), "the buckets do not cover every summed gradient once");
      if (experts) {
        size_t first_sum = 0, last_exchange = 0;
        for (size_t i = 0; i < run.calls.size(); ++i) {
          if (run.calls[i].kind == 'g' && first_sum == 0) first_sum = i + 1;
          if (run.calls[i].kind == 'a') last_exchange = i + 1;
        }
        EXPECT(first_sum > 0 && last_exchange > first_sum, "no all-to-all after the first bucket's sum");
      }
    }
    detail += str(experts ? ", MoE (EP): " : "Mamba: ", gradient_sums(runs[0]).size(), " sums");
  }
  for (const bool experts : {false, true}) {
    const auto run = on_ranks({experts ? moe() : mamba(), 2, experts, 1, 0, 1})[0];
    const auto sums = gradient_sums(run);
    EXPECT(sums.size() == run.summed.size(), sums.size(), " sums for ", run.summed.size(), " ranges");
    for (size_t i = 0; i < sums.size(); ++i)
      EXPECT(sums[i].range.begin == run.summed[i].begin && sums[i].range.end == run.summed[i].end,
             "sum ", i, " is not range ", i, " in order");
    // Nothing else between them, and under expert parallel every all-to-all of the step before.
    size_t first = run.calls.size(), last = 0, after_exchanges = 0;
    for (size_t i = 0; i < run.calls.size(); ++i) {
      if (run.calls[i].kind == 'g') first = std::min(first, i), last = i;
      if (run.calls[i].kind == 'a') after_exchanges = i + 1;
    }
    EXPECT(last - first + 1 == sums.size() && after_exchanges <= first, "without buckets, a sum during the backward");
  }
  return detail + "; without buckets one pass after the backward";
}
