// One training step on backend B: zero the gradients, forward, backward, the global-norm
// clipping coefficient and AdamW (which applies it and refreshes a compute copy), all enqueued
// on the backend, then one synchronisation to read the metrics. Holds the step count.
// Where B can capture graphs (CUDA), a step that has run eagerly at a shape makes the next
// capture zero-grad → forward → backward → clip coefficient into a graph, and later steps
// replay it (AdamW, whose learning rate and bias corrections change every step, stays a few
// eager launches). A model that reads values on the host mid-step (dropless MoE) runs eagerly.
// Data parallel (set_collective): each rank runs its slice of the global batch, then the ranks
// sum gradients, loss and routing counts (dist/collective.h) and every replica takes the same
// step on their mean: the update of one process on the whole batch when the slices are equal
// (MoE load-balancing losses are each rank's own, as they are each micro-batch's). Those steps
// run eagerly. Gradients are summed in place on the GPU where the collective can (NCCL: the
// whole gradient buffer as one bucket after the backward, then the loss; the host waits for each
// sum before it enqueues the optimizer), else through the host; metrics always pass the host.
// With the optimizer sharded (ZeRO-1) each rank keeps AdamW moments for its share of the
// weights only (dist/shards.h) and updates only that share, clipped by the norm of the whole
// summed gradient as without sharding; then the ranks gather the updated weights. AdamW is
// elementwise and a gather copies, so every replica ends each step with the bits it would have
// had unsharded.
#pragma once
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

#include "../dist/collective.h"
#include "../dist/shards.h"
#include "../nn/lm.h"

namespace ml {

struct OptimizerConfig {
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0.1;
  double grad_clip = 1.0;  // ≤ 0: no clipping
};

// Tokens each expert of one mixture-of-experts layer took in a step, and those dropped.
struct ExpertCounts {
  std::vector<int64_t> counts;
  int64_t dropped = 0;
};

struct StepMetrics {
  double loss;       // mean next-token cross-entropy
  double aux_loss;   // load-balancing losses (weighted), also optimised
  double grad_norm;  // before clipping
  std::vector<ExpertCounts> experts;  // one per MoE layer, in layer order
  bool cuda_graph = false;            // the step replayed a captured CUDA graph
  bool skipped = false;               // loss or gradient norm not finite: nothing was changed
};

// Backends whose buffers live on a GPU have the stream they enqueue on (the CUDA backend).
template <class B, class = void>
constexpr bool kOnDevice = false;
template <class B>
constexpr bool kOnDevice<B, std::void_t<decltype(std::declval<const B&>().stream())>> = true;

template <class B>
class TrainStep {
 public:
  using Stat = typename B::Stat;

  TrainStep(LanguageModel<B>& model, bool use_graphs)
      : model_(model), use_graphs_(use_graphs && B::kGraphs), norm_coef_(2, "gradient norm"), ranks_loss_(1, "loss") {}

  // The ranks this step sums with (null or a world of 1: none). The collective outlives the step.
  // shard_optimizer: this rank keeps and updates only its share of the optimizer (ZeRO-1); the
  // moments of the other shares, if already made, are freed.
  void set_collective(Collective* collective, bool shard_optimizer = false) {
    ML_CHECK(!collective || !collective->device_sums() || kOnDevice<B>,
             "data parallel: NCCL sums GPU memory, and this model runs on the CPU (use device 'cuda', or ranks "
             "that meet through shared memory)");
    collective_ = collective && collective->world() > 1 ? collective : nullptr;
    ParamStore<B>& params = model_.params();
    shards_ = collective_ && shard_optimizer ? shard_bounds(params.total(), collective_->world())
                                             : std::vector<int64_t>{};
    const size_t rank = collective_ ? size_t(collective_->rank()) : 0;
    if (sharded())
      params.share_moments(shards_[rank], shards_[rank + 1]);
    else
      params.share_moments(0, params.total());
    forget_graph();
  }
  // Whether this rank updates only its share of the weights (ZeRO-1).
  bool sharded() const { return !shards_.empty(); }
  // Each rank's share of the flat parameter buffers (dist/shards.h); empty unless sharded.
  const std::vector<int64_t>& shards() const { return shards_; }
  // The ranks (null when none).
  Collective* collective() const { return collective_; }

  // One optimizer step on `batch` rows of tokens (batch, len + 1), as `micro_batches` equal
  // micro-batches whose gradients accumulate and are averaged: the same update as one pass over
  // the whole batch, in a fraction of the activation memory. A step whose loss or gradient norm
  // is not finite changes nothing (StepMetrics::skipped) and does not count.
  StepMetrics run(const int32_t* tokens, int64_t batch, int64_t len_plus_one, double lr, const OptimizerConfig& opt,
                  int64_t micro_batches = 1) {
    ML_CHECK(micro_batches >= 1 && batch % micro_batches == 0, "train step: ", micro_batches,
             " micro-batches must divide the batch of ", batch, " rows");
    // Before anything counts: out of memory here leaves the model as it was.
    model_.params().make_moments();
    StepMetrics m = micro_batches == 1 ? gradients_of_batch(tokens, batch, len_plus_one, opt.grad_clip)
                                       : gradients_of_micro_batches(tokens, batch, len_plus_one, opt.grad_clip,
                                                                    micro_batches);
    ++steps_done_;
    ParamStore<B>& params = model_.params();
    // The part of each tensor whose moments this rank holds: all of it unless sharded.
    std::vector<OptimizerTensor<typename B::Real, typename B::Act>> tensors;
    tensors.reserve(params.size());
    for (size_t i = 0; i < params.size(); ++i) {
      const ParamSpec& p = params.spec(i);
      const auto held = params.moments_of(i);
      if (held.count == 0) continue;
      tensors.push_back({params.master(i) + held.from, params.grad(i) + held.from, held.m, held.v, held.count,
                         p.weight_decay ? opt.weight_decay : 0.0,
                         ParamStore<B>::kComputeCopy ? params.compute(i) + held.from : nullptr});
    }
    if (!m.skipped)
      model_.backend().adamw({lr, opt.beta1, opt.beta2, opt.eps, opt.weight_decay, steps_done_}, tensors,
                             norm_coef_.get());
    // A skipped step changed no share: gathering then copies what every rank has already.
    if (sharded()) gather_weights();
    if (micro_batches == 1) {
      m = read_metrics(true);  // waits for the step
    } else {
      Stat norm = 0;
      model_.backend().copy_to_host(&norm, norm_coef_.get(), sizeof(Stat));
      model_.backend().sync();
      m.grad_norm = double(norm);
    }
    // Every rank sums gradients, loss, then metrics, in that order, however it splits its rows.
    if (collective_) mean_over_ranks(m);
    // The optimizer skipped a step it was given a non-finite loss or norm for (a NaN coefficient).
    m.skipped = m.skipped || !std::isfinite(m.loss) || !std::isfinite(m.grad_norm);
    if (m.skipped) --steps_done_;
    m.cuda_graph = replayed_;
    return m;
  }

  // The last forward's loss, auxiliary losses and routing, read back (synchronises).
  StepMetrics read_metrics(bool with_grad_norm) const {
    const B& b = model_.backend();
    Stat loss = 0, norm = 0;
    b.copy_to_host(&loss, model_.loss(), sizeof(Stat));
    if (with_grad_norm) b.copy_to_host(&norm, norm_coef_.get(), sizeof(Stat));
    const std::vector<ExpertStats> stats = model_.expert_stats();
    std::vector<ExpertCounts> experts(stats.size());
    std::vector<double> aux(stats.size());
    for (size_t l = 0; l < stats.size(); ++l) {
      experts[l].counts.resize(size_t(stats[l].experts));
      b.copy_to_host(experts[l].counts.data(), stats[l].counts, size_t(stats[l].experts) * sizeof(int64_t));
      b.copy_to_host(&experts[l].dropped, stats[l].dropped, sizeof(int64_t));
      b.copy_to_host(&aux[l], stats[l].aux_loss, sizeof(double));
    }
    b.sync();
    double aux_loss = 0;
    for (double a : aux) aux_loss += a;
    return {double(loss), aux_loss, double(norm), std::move(experts)};
  }

  // Drops the captured step: the next steps run eagerly, then capture again. Call it before
  // anything else uses the model's buffers (evaluation, gradients on request).
  void forget_graph() { graph_ = {}, warm_generation_ = -1; }

  int64_t steps_done() const { return steps_done_; }
  void set_steps_done(int64_t steps) { steps_done_ = steps; }

 private:
  // Zero-grad, forward, backward and the clipping coefficient: the part a graph replays.
  void gradients(double grad_clip) {
    model_.zero_grad();
    model_.forward_uploaded(true);
    model_.backward();
    if (!collective_) return clip(grad_clip, 1.0, model_.loss());
    // The sum of the ranks' losses decides, on every rank alike, whether the step is skipped.
    const B& b = model_.backend();
    sum_over_ranks(model_.params().grads(), model_.params().total());
    b.copy(ranks_loss_.get(), model_.loss(), sizeof(Stat));
    sum_over_ranks(ranks_loss_.get(), 1);
    clip(grad_clip, 1.0 / double(collective_->world()), ranks_loss_.get());
  }

  // data[0, n) in the backend's memory ← the sum over the ranks of each one's data · scale: in
  // place on the GPU when the collective can, else through the host.
  template <typename U>
  void sum_over_ranks(U* data, int64_t n, double scale = 1.0) {
    const B& b = model_.backend();
    if constexpr (kOnDevice<B>) {
      if (collective_->device_sums()) return collective_->all_reduce_sum_device(data, n, b.stream(), scale);
    }
    std::vector<U> host(static_cast<size_t>(n));
    b.copy_to_host(host.data(), data, size_t(n) * sizeof(U));
    b.sync();
    if (scale != 1.0)
      for (U& x : host) x = U(double(x) * scale);
    collective_->all_reduce_sum(host.data(), n);
    b.from_host(data, host.data(), size_t(n) * sizeof(U));
  }

  // Every rank's share of the master weights, from its owner, then the compute copy from them
  // (the rounding AdamW applies to its own share, so the same bits). In place on the GPU when the
  // collective can, else through the host.
  void gather_weights() {
    ParamStore<B>& params = model_.params();
    using Real = typename B::Real;
    Real* weights = params.masters();
    if constexpr (!kOnDevice<B>) {
      collective_->all_gather(weights, shards_);
    } else if (collective_->device_sums()) {
      collective_->all_gather_device(weights, shards_, model_.backend().stream());
    } else {
      const B& b = model_.backend();
      const size_t rank = size_t(collective_->rank());
      const int64_t begin = shards_[rank], end = shards_[rank + 1];
      std::vector<Real> host(static_cast<size_t>(params.total()));
      b.copy_to_host(host.data() + begin, weights + begin, size_t(end - begin) * sizeof(Real));
      b.sync();
      collective_->all_gather(host.data(), shards_);
      b.from_host(weights, host.data(), host.size() * sizeof(Real));
    }
    params.refresh_compute();
  }

  // The ranks' mean loss and auxiliary loss, and their summed routing counts (one sum).
  void mean_over_ranks(StepMetrics& m) {
    std::vector<double> v{m.loss, m.aux_loss};
    for (const ExpertCounts& e : m.experts) {
      v.insert(v.end(), e.counts.begin(), e.counts.end());
      v.push_back(double(e.dropped));
    }
    collective_->all_reduce_sum(v.data(), int64_t(v.size()));
    const double world = double(collective_->world());
    m.loss = v[0] / world, m.aux_loss = v[1] / world;
    size_t at = 2;
    for (ExpertCounts& e : m.experts) {
      for (int64_t& count : e.counts) count = int64_t(v[at++]);
      e.dropped = int64_t(v[at++]);
    }
  }

  // One span covers every gradient: the padding between tensors stays zero.
  void clip(double grad_clip, double scale, const Stat* loss) {
    ParamStore<B>& params = model_.params();
    model_.backend().clip_coefficient(params.grads(), params.total(), grad_clip, scale, loss, norm_coef_.get());
  }

  // The whole batch at once: replayed as a CUDA graph once the shape has run eagerly.
  StepMetrics gradients_of_batch(const int32_t* tokens, int64_t batch, int64_t len_plus_one, double grad_clip) {
    const B& b = model_.backend();
    model_.upload(tokens, batch, len_plus_one);
    if constexpr (B::kGraphs) {
      const int64_t generation = model_.buffers_generation();
      replayed_ = graph_ && graph_generation_ == generation && graph_clip_ == grad_clip;
      if (!replayed_ && use_graphs_ && !collective_ && !capture_refused_ && warm_generation_ == generation &&
          warm_clip_ == grad_clip && model_.capturable()) {
        graph_ = b.capture([&] { gradients(grad_clip); });
        graph_generation_ = generation, graph_clip_ = grad_clip;
        replayed_ = bool(graph_);
        capture_refused_ = !graph_;  // the same work would be refused again: stay eager
      }
    }
    if (replayed_) {
      if constexpr (B::kGraphs) b.launch(graph_);
    } else {
      gradients(grad_clip);
      warm_generation_ = model_.buffers_generation(), warm_clip_ = grad_clip;
    }
    return {};  // the metrics are read after the optimizer
  }

  // Micro-batch after micro-batch, eagerly: gradients accumulate, each pass's metrics are read
  // back (averaged losses, summed expert counts) and the coefficient averages the gradients.
  StepMetrics gradients_of_micro_batches(const int32_t* tokens, int64_t batch, int64_t len_plus_one, double grad_clip,
                                         int64_t micro_batches) {
    replayed_ = false;
    const int64_t rows = batch / micro_batches;
    StepMetrics total{0, 0, 0, {}};
    for (int64_t i = 0; i < micro_batches; ++i) {
      model_.upload(tokens + i * rows * len_plus_one, rows, len_plus_one);
      if (i == 0) model_.zero_grad();
      model_.forward_uploaded(true);
      model_.backward();
      const StepMetrics part = read_metrics(false);
      total.loss += part.loss / double(micro_batches);
      total.aux_loss += part.aux_loss / double(micro_batches);
      if (i == 0) {
        total.experts = part.experts;
        continue;
      }
      for (size_t l = 0; l < part.experts.size(); ++l) {
        auto& sum = total.experts[l];
        for (size_t e = 0; e < sum.counts.size(); ++e) sum.counts[e] += part.experts[l].counts[e];
        sum.dropped += part.experts[l].dropped;
      }
    }
    // The host has every loss: a non-finite one skips the step here; the norm is checked on the device.
    // With ranks, each averages its own micro-batches first: they may split their rows differently.
    double scale = 1.0 / double(micro_batches), loss = total.loss;
    if (collective_) {
      sum_over_ranks(model_.params().grads(), model_.params().total(), scale);
      Stat ranks_loss = Stat(total.loss);
      collective_->all_reduce_sum(&ranks_loss, 1);  // as gradients() sums the loss
      loss = double(ranks_loss);
      scale = 1.0 / double(collective_->world());
    }
    total.skipped = !std::isfinite(loss);
    clip(grad_clip, scale, nullptr);
    return total;  // run() averages its metrics over the ranks
  }

  LanguageModel<B>& model_;
  const bool use_graphs_;
  typename B::template Buffer<Stat> norm_coef_;  // [0] gradient norm before clipping, [1] clipping coefficient
  Collective* collective_ = nullptr;
  std::vector<int64_t> shards_;                   // ZeRO-1: each rank's share (dist/shards.h)
  typename B::template Buffer<Stat> ranks_loss_;  // data parallel: the ranks' summed loss
  int64_t steps_done_ = 0;
  typename B::Graph graph_;
  // The model's buffers generation and clipping threshold the graph was captured at, and
  // those of the last eager step (capture waits for one, which warms every cache).
  int64_t graph_generation_ = -1, warm_generation_ = -1;
  double graph_clip_ = 0, warm_clip_ = 0;
  bool replayed_ = false, capture_refused_ = false;
};

}  // namespace ml
