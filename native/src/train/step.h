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
// run eagerly. The gradients are summed in buckets while the backward runs (train/grad_buckets.h:
// a bucket as soon as the backward has finished at least bucket_bytes of them, the last layers'
// first; the embedding's, which the tied head adds to, only at the end), in place on the GPU
// where the collective can (NCCL: each bucket on the collective's stream once the backward has
// reached it; the model's stream and the host wait for them all before the loss's sum and the
// clipping), else through the host as each bucket is ready. Each element's sum is the same
// whatever the buckets, so the bits are too. With micro-batches only the last one's backward
// overlaps: the gradients are final only then. Metrics always pass the host.
// With the optimizer sharded (ZeRO-1) each rank keeps AdamW moments for its share of the
// weights only (dist/shards.h) and updates only that share, clipped by the norm of the whole
// summed gradient as without sharding; then the ranks gather the updated weights. AdamW is
// elementwise and a gather copies, so every replica ends each step with the bits it would have
// had unsharded.
// Expert parallel: each rank holds, runs and updates only its block of each MoE layer's experts
// (the tensors the model marks ParamSpec::experts: weights, gradients and moments, laid out
// without the others', nn/params.h; nn/moe.h exchanges the tokens). The other gradients are
// summed as above; an expert tensor's gradient is not: it is the sum, in rank order, of what each
// source rank's tokens give this rank's experts, which the layer computes apart and adds in the
// backward; with micro-batches each source's accumulates apart over the micro-batches and this
// step adds them at the end, each scaled as a rank scales its gradient before a sum: the bits
// the data-parallel sum would give. The clipping norm adds the ranks' sums of their own blocks'
// squares to that of the summed gradients, which rounds differently from one sum over the whole
// buffer: the norm agrees to rounding, and so do the weights when clipping scales them; unclipped
// steps are bit-identical to data parallel. A read of an expert tensor gathers the owners'
// blocks (train/model_runtime.h).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

#include "../dist/collective.h"
#include "../dist/shards.h"
#include "../nn/lm.h"
#include "../ops/grad_clip/grad_clip.h"
#include "grad_buckets.h"

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

// Data parallel: the bytes of gradients a bucket gathers before its sum starts, DDP's default.
constexpr int64_t kDefaultBucketBytes = int64_t{25} << 20;

template <class B>
class TrainStep {
 public:
  using Stat = typename B::Stat;

  TrainStep(LanguageModel<B>& model, bool use_graphs)
      : model_(model), use_graphs_(use_graphs && B::kGraphs), norm_coef_(2, "gradient norm"), ranks_loss_(1, "loss") {}

  // The ranks this step sums with (null or a world of 1: none). The collective outlives the step.
  // shard_optimizer: this rank keeps and updates only its share of the optimizer (ZeRO-1); the
  // moments of the other shares, if already made, are freed.
  // expert_parallel: each rank runs and updates only its block of each MoE layer's experts.
  void set_collective(Collective* collective, bool shard_optimizer = false, bool expert_parallel = false) {
    ML_CHECK(!collective || !collective->device_sums() || kOnDevice<B>,
             "data parallel: NCCL sums GPU memory, and this model runs on the CPU (use device 'cuda', or ranks "
             "that meet through shared memory)");
    ML_CHECK(!(shard_optimizer && expert_parallel), "expert parallel: not with the optimizer sharded "
             "(shard_optimizer): ZeRO-1's shares cut across the expert blocks; use one or the other");
    ParamStore<B>& params = model_.params();
    std::vector<size_t> experts;
    for (size_t i = 0; i < params.size(); ++i)
      if (params.spec(i).experts > 0) experts.push_back(i);
    ML_CHECK(!expert_parallel || !experts.empty(),
             "expert parallel: the model has no mixture-of-experts layer ('E' in its layers) to share");
    // Checked (num_experts % ranks) before anything changes.
    model_.share_experts(expert_parallel ? collective : nullptr);
    collective_ = collective && collective->world() > 1 ? collective : nullptr;
    expert_tensors_ = expert_parallel && collective_ ? experts : std::vector<size_t>{};
    const size_t rank = collective_ ? size_t(collective_->rank()) : 0;
    if (expert_parallel && collective_)
      params.keep_expert_block(int(rank), collective_->world());
    else
      params.keep_expert_block(0, 1);
    shards_ = collective_ && shard_optimizer ? shard_bounds(params.total(), collective_->world())
                                             : std::vector<int64_t>{};
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
  // Whether each rank runs and updates only its block of each MoE layer's experts.
  bool expert_parallel() const { return !expert_tensors_.empty(); }
  // Elements of parameter i each rank holds whole, world + 1 bounds: blocks of experts for an
  // expert tensor under expert parallel; else empty (every rank holds it all).
  std::vector<int64_t> expert_blocks(size_t i) const {
    const ParamSpec& p = model_.params().spec(i);
    if (!expert_parallel() || p.experts == 0) return {};
    const int world = collective_->world();
    std::vector<int64_t> bounds;
    for (int r = 0; r <= world; ++r) bounds.push_back(p.numel / world * r);
    return bounds;
  }
  // The ranks (null when none).
  Collective* collective() const { return collective_; }
  // Data parallel: the least bytes of gradients summed at once while the backward runs (a
  // bucket); 0: all of them in one pass after the backward. Every rank must use the same.
  void set_bucket_bytes(int64_t bytes) {
    ML_CHECK(bytes >= 0, "train step: a gradient bucket of ", bytes, " bytes");
    bucket_bytes_ = bytes;
  }
  int64_t bucket_bytes() const { return bucket_bytes_; }

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
    // The part of each tensor whose moments this rank holds: all it holds unless sharded (expert
    // parallel: its experts alone).
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
    if (!collective_) {
      model_.backward();
      return clip(grad_clip, 1.0, model_.loss());
    }
    backward_summing(1.0);
    // The sum of the ranks' losses decides, on every rank alike, whether the step is skipped.
    const B& b = model_.backend();
    b.copy(ranks_loss_.get(), model_.loss(), sizeof(Stat));
    sum_over_ranks(ranks_loss_.get(), 1);
    clip(grad_clip, 1.0 / double(collective_->world()), ranks_loss_.get());
  }

  // data[0, n) in the backend's memory ← the sum over the ranks of each one's data · scale: in
  // place on the GPU when the collective can, else through the host (in place on the CPU).
  template <typename U>
  void sum_over_ranks(U* data, int64_t n, double scale = 1.0) {
    const auto scaled = [scale](U* x, int64_t count) {
      if (scale != 1.0)
        for (int64_t i = 0; i < count; ++i) x[i] = U(double(x[i]) * scale);
    };
    if constexpr (!kOnDevice<B>) {
      scaled(data, n);
      return collective_->all_reduce_sum(data, n);
    } else {
      const B& b = model_.backend();
      if (collective_->device_sums()) return collective_->all_reduce_sum_device(data, n, b.stream(), scale);
      std::vector<U> host(static_cast<size_t>(n));
      b.copy_to_host(host.data(), data, size_t(n) * sizeof(U));
      b.sync();
      scaled(host.data(), n);
      collective_->all_reduce_sum(host.data(), n);
      b.from_host(data, host.data(), size_t(n) * sizeof(U));
    }
  }

  // The backward, and the gradients over the ranks, each rank's scaled by `scale` first: summed
  // bucket by bucket as the backward finishes them (class comment), but for expert tensors under
  // expert parallel, whose sources' gradients the backward has added already, or, kept apart over
  // micro-batches, this step adds now. The ranges between expert tensors are summed each on its
  // own, the same on every rank (the ranks' buffers have one layout), in the same order.
  void backward_summing(double scale) {
    ParamStore<B>& params = model_.params();
    ML_CHECK(expert_tensors_.empty() || params.expert_sources() > 0 || scale == 1.0,
             "train step: expert gradients added in the backward cannot be scaled by ", scale);
    GradientBuckets buckets(summed_ranges(), int64_t(sizeof(typename B::Real)), bucket_bytes_);
    model_.backward([&](int64_t offset) {
      for (const GradRange& r : buckets.final_from(offset)) start_sum(params.grads() + r.begin, r.size(), scale);
    });
    if constexpr (kOnDevice<B>) {
      if (collective_->device_sums()) collective_->wait_sums_device(model_.backend().stream());
    }
    if (params.expert_sources() > 0)
      for (const size_t i : expert_tensors_) add_expert_sources(i, scale);
  }

  // The ranges of the flat gradient buffer every rank holds whole: all of it, or the ranges
  // between expert tensors under expert parallel.
  std::vector<GradRange> summed_ranges() const {
    const ParamStore<B>& params = model_.params();
    std::vector<GradRange> out;
    int64_t begin = 0;
    for (const size_t i : expert_tensors_) {
      const ParamSpec& p = params.spec(i);
      out.push_back({begin, p.offset});
      begin = p.offset + p.held;
    }
    out.push_back({begin, params.total()});
    return out;
  }

  // A bucket's range over the ranks: started on the collective's stream where it sums on the
  // device (backward_summing waits for them), else summed now.
  void start_sum(typename B::Real* data, int64_t n, double scale) {
    if constexpr (kOnDevice<B>) {
      if (collective_->device_sums()) return collective_->start_sum_device(data, n, model_.backend().stream(), scale);
    }
    sum_over_ranks(data, n, scale);
  }

  // Expert tensor i's gradient (source 0's contribution) ← Σ over the sources s in order of
  // scale · source s's, as sum_over_ranks rounds (scaled in double, then added in the type).
  void add_expert_sources(size_t i, double scale) {
    using Real = typename B::Real;
    const B& b = model_.backend();
    ParamStore<B>& params = model_.params();
    const size_t n = size_t(params.spec(i).held);
    std::vector<Real> own(n), source(n);
    const auto scaled = [&](std::vector<Real>& host, const Real* from) {
      b.copy_to_host(host.data(), from, n * sizeof(Real));
      b.sync();
      if (scale != 1.0)
        for (Real& x : host) x = Real(double(x) * scale);
    };
    scaled(own, params.grad(i));
    for (int64_t s = 0; s < params.expert_sources(); ++s) {
      scaled(source, params.expert_source(i, s));
      for (size_t k = 0; k < n; ++k) own[k] += source[k];
    }
    b.from_host(params.grad(i), own.data(), n * sizeof(Real));
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

  // One span covers every gradient: the padding between tensors stays zero. Expert parallel:
  // the spans between expert tensors, and the ranks' summed squares of their own expert blocks.
  void clip(double grad_clip, double scale, const Stat* loss) {
    ParamStore<B>& params = model_.params();
    using Span = cpu::GradSpan<typename B::Real>;
    if (!expert_parallel())
      return model_.backend().clip_coefficient({Span{params.grads(), params.total()}}, grad_clip, scale, loss,
                                               norm_coef_.get());
    std::vector<Span> replicated, own;
    for (const GradRange& r : summed_ranges()) replicated.push_back({params.grads() + r.begin, r.size()});
    for (const size_t i : expert_tensors_) own.push_back({params.grad(i), params.spec(i).held});
    const B& b = model_.backend();
    typename B::template Buffer<double> squares(1, "expert gradient squares");
    b.sum_squares(own, squares.get());
    double elsewhere = 0;
    b.copy_to_host(&elsewhere, squares.get(), sizeof(double));
    b.sync();
    collective_->all_reduce_sum(&elsewhere, 1);
    b.clip_coefficient(replicated, grad_clip, scale, loss, norm_coef_.get(), elsewhere);
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
    // Expert parallel: each other source's gradients for this rank's experts accumulate apart
    // until backward_summing adds them; the blocks go with the step, however it ends.
    ParamStore<B>& params = model_.params();
    struct Sources {
      ParamStore<B>& params;
      ~Sources() { params.keep_expert_sources(0); }
    } sources{params};
    if (expert_parallel()) params.keep_expert_sources(collective_->world() - 1);
    // With ranks, each averages its own micro-batches first: they may split their rows differently.
    double scale = 1.0 / double(micro_batches);
    for (int64_t i = 0; i < micro_batches; ++i) {
      model_.upload(tokens + i * rows * len_plus_one, rows, len_plus_one);
      if (i == 0) model_.zero_grad();
      model_.forward_uploaded(true);
      if (collective_ && i == micro_batches - 1)
        backward_summing(scale);
      else
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
    double loss = total.loss;
    if (collective_) {
      Stat ranks_loss = Stat(total.loss);
      collective_->all_reduce_sum(&ranks_loss, 1);  // as gradients() sums the loss
      loss = double(ranks_loss);
      scale = 1.0 / double(collective_->world());
    }
    params.keep_expert_sources(0);
    total.skipped = !std::isfinite(loss);
    clip(grad_clip, scale, nullptr);
    return total;  // run() averages its metrics over the ranks
  }

  LanguageModel<B>& model_;
  const bool use_graphs_;
  typename B::template Buffer<Stat> norm_coef_;  // [0] gradient norm before clipping, [1] clipping coefficient
  Collective* collective_ = nullptr;
  std::vector<int64_t> shards_;                   // ZeRO-1: each rank's share (dist/shards.h)
  std::vector<size_t> expert_tensors_;            // expert parallel: the stacked experts' tensors
  int64_t bucket_bytes_ = kDefaultBucketBytes;    // data parallel: set_bucket_bytes
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
