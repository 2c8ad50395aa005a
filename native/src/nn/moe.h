// The mixture-of-experts layer ('E'): a router sends each token to its top-k experts
// (feed-forward blocks, ffn.h); the output is the gate-weighted sum of their outputs. Dropped
// assignments (over capacity) contribute nothing: the token passes through the residual
// stream. MoE-Mamba: switch router, GELU experts; BlackMamba: Sinkhorn router with bias,
// SwiGLU experts.
//   Forward: router linear → route (ops/router) → each kept assignment gets a slot in an
//   expert-contiguous layout and the tokens are gathered into their slots (ops/moe_dispatch)
//   → the experts' feed-forward blocks → y[t] = Σ over t's kept choices of gate · out[slot].
//   Backward: the gates' gradients, dy gathered into the slots scaled by the gates, the
//   experts' backward, dx combined back, then the router's backward adds into dx.
// Layouts:
//   capacity: every expert has `capacity` slots and the experts run as one batch of E blocks.
//   The capacity is known on the host, so nothing waits for the device. Empty slots are zero
//   in x and dy: they add nothing to any gradient.
//   dropless: expert e's slots are its count rounded up to B::kSegmentRows, each expert one
//   GEMM chain whose row count the host must know: the forward reads the counts back (the
//   layer's one synchronisation, which also keeps a dropless MoE out of CUDA graphs).
// Expert parallel (share_experts): rank q of W runs only experts [q·E/W, (q+1)·E/W). Each rank
// routes and places its own tokens as above; since the slots are expert-contiguous, the rows for
// each owner are one block, sent with the other ranks' all-to-all (dist/collective.h: the rows
// per expert first, then the rows). The owner runs its experts over each source's block in
// turn, exactly the batches that source would have run itself, and sends the outputs back, so
// the combine sees the bits it would see with every expert local. The backward mirrors it: dy's
// slots out, dx's back. The rank holds its experts' weights alone (ParamStore::keep_expert_block).
// Their gradient is the sum over the sources in rank order, the order a data-parallel sum adds
// the ranks' gradients in, each source's computed apart as that source would have: source 0's
// into the gradient itself, each later one's into a scratch block added to it at once, or, when
// the step accumulates micro-batches, into a block per source that the step adds at its end
// (ParamStore::keep_expert_sources, train/step.h).
// Generation drops nothing: a prompt's prefill routes dropless, and a decode step takes each
// token's top_k experts alone (ops/router's route_choices: no capacity, no synchronisation) and
// runs them from their weights (ops/expert_decode) instead of the slot layout.
#pragma once
#include <cmath>
#include <string>
#include <vector>

#include "../ops/expert_decode/expert_decode.h"
#include "config.h"
#include "ffn.h"
#include "layer.h"
#include "params.h"

namespace ml {

template <class B>
class MoeLayer final : public Layer<B> {
 public:
  using Act = typename B::Act;

  // Parameters: router.weight (E, d), experts.fc1.weight (E, fc1_rows, d),
  // experts.fc2.weight (E, d, hidden), then router.bias (E) if enabled (zero); the experts
  // are initialised as the MLP.
  MoeLayer(int64_t d_model, const MoeConfig& c, ParamStore<B>& params, const std::string& prefix,
           int64_t n_residual_layers)
      : d_(d_model), cfg_(c), p_(params), b_(params.backend()) {
    const int64_t E = c.num_experts;
    ML_CHECK(E >= 1, "moe: num_experts must be at least 1, got ", E);
    ML_CHECK(c.expert.hidden > 0, "moe: expert hidden size must be positive, got ", c.expert.hidden);
    ML_CHECK(c.router.top_k >= 1 && c.router.top_k <= E, "moe: top_k must be in [1, ", E, "], got ", c.router.top_k);
    const auto bound = ParamInit::uniform(1.0 / std::sqrt(double(d_)));
    router_w_ = p_.add(prefix + "router.weight", {E, d_}, true, bound);
    fc1_ = p_.add(prefix + "experts.fc1.weight", {E, c.expert.fc1_rows(), d_}, true, bound);
    fc2_ = p_.add(prefix + "experts.fc2.weight", {E, d_, c.expert.hidden}, true,
                  ParamInit::uniform(1.0 / std::sqrt(double(c.expert.hidden)) / std::sqrt(double(n_residual_layers))));
    p_.stack_experts(fc1_, E), p_.stack_experts(fc2_, E);
    if (c.router_bias) router_b_ = p_.add(prefix + "router.bias", {E}, false, ParamInit::constant(0.0));
    resize(counts_, E), resize(first_counts_, E), resize(offsets_, E), resize(dropped_, 1), resize(aux_, 1);
  }

  void set_training(bool training) override { cfg_.router.training = training; }
  // Dropless reads the expert counts on the host each forward.
  bool capturable() const override { return !cfg_.router.dropless(); }
  void expert_stats(std::vector<ExpertStats>& out) const override {
    out.push_back({counts_.get(), dropped_.get(), aux_.get(), cfg_.num_experts});
  }
  void share_experts(Collective* ranks) override {
    const int world = ranks ? ranks->world() : 1;
    ML_CHECK(cfg_.num_experts % world == 0, "expert parallel: num_experts ", cfg_.num_experts,
             " does not split into ", world, " ranks' equal blocks (num_experts % ranks must be 0)");
    ranks_ = world > 1 ? ranks : nullptr;
  }

  void forward(const Act* x, Act* y, int64_t batch, int64_t len) override { route(x, y, batch * len, cfg_.router); }
  void prefill(const Act* x, Act* y, int64_t len, int64_t) override {
    RouterOptions dropless = cfg_.router;
    dropless.capacity_factor = 0;
    route(x, y, len, dropless);
  }
  // Router linear, route_choices (what route_forward gives when no expert can overflow, in one
  // launch that waits for nothing even for a dropless router: the step can be captured), then
  // each token's chosen experts straight from their weights (ops/expert_decode).
  void decode(const Act* x, Act* y, const DecodeStep& step) override {
    const int64_t tokens = step.batch, E = cfg_.num_experts, k = cfg_.router.top_k;
    resize(logits_, tokens * E), resize(probs_, tokens * E), resize(gates_, k * tokens), resize(expert_, k * tokens);
    resize(decode_hidden_, k * tokens * cfg_.expert.hidden);
    x_ = nullptr;  // the router's buffers now hold this step's: no backward before the next forward
    router_logits(x, tokens);
    b_.route_choices(cfg_.router, logits_.get(), tokens, E, probs_.get(), gates_.get(), expert_.get());
    b_.expert_decode({tokens, k, d_, cfg_.expert.hidden, activation()}, x, expert_.get(), gates_.get(),
                     p_.compute(fc1_), p_.compute(fc2_), decode_hidden_.get(), y);
  }

  void backward(const Act* dy, Act* dx) override {
    ML_CHECK(x_ != nullptr, "moe: backward called before forward");
    const int64_t tokens = tokens_, E = cfg_.num_experts, k = cfg_.router.top_k, assignments = k * tokens;
    if (tokens <= 0) return;
    ActBuffer dgates(assignments, "moe backward"), dlogits(tokens * E, "moe backward");
    ActBuffer dslots(slots_ * d_, "moe backward"), dslots_in(slots_ * d_, "moe backward");
    b_.gate_grad(dy, expert_out_.get(), slot_.get(), tokens, assignments, d_, dgates.get());
    b_.gather(dy, gates_.get(), source_.get(), slots_, tokens, d_, dslots.get());
    if (ranks_) {
      ActBuffer owned_dy(owned_rows_ * d_, "moe backward"), owned_dx(owned_rows_ * d_, "moe backward");
      exchange(dslots.get(), local_rows_, owned_dy.get(), owned_rows_of_);
      run_experts(owned_dy.get(), owned_dx.get());
      exchange(owned_dx.get(), owned_rows_of_, dslots_in.get(), local_rows_);
    } else {
      run_experts(dslots.get(), dslots_in.get());
    }
    b_.combine(dslots_in.get(), nullptr, slot_.get(), tokens, k, d_, dx);
    b_.route_backward(active_, probs_.get(), routing_, dgates.get(), dlogits.get());
    b_.linear_backward(x_, p_.compute(router_w_), dlogits.get(), dx, p_.grad(router_w_),
                       has_bias() ? p_.grad(router_b_) : nullptr, tokens, d_, E, true);
  }

 private:
  using ActBuffer = typename B::template Buffer<Act>;
  using RealBuffer = typename B::template Buffer<typename B::Real>;
  template <typename Buffer>
  static void resize(Buffer& buffer, int64_t n) {
    if (buffer.size() != n) buffer = Buffer(n, "moe");
  }

  // The forward over `tokens` rows, routed with `options` (kept for the backward as active_).
  void route(const Act* x, Act* y, int64_t tokens, const RouterOptions& options) {
    // Every rank must come to the exchange: a rank without tokens would leave the others waiting.
    ML_CHECK(tokens > 0 || !ranks_, "expert parallel: every rank needs tokens at every MoE layer, this one has none");
    if (!assign(x, tokens, options)) return;
    const int64_t E = cfg_.num_experts, k = options.top_k, assignments = k * tokens;
    const int64_t* offsets = nullptr;
    if (options.dropless()) {
      b_.segment_offsets(counts_.get(), E, B::kSegmentRows, offsets_.get());
      offsets = offsets_.get();
      slots_ = assignments + E * (B::kSegmentRows - 1);  // room for the largest padding
    } else {
      slots_ = E * routing_.capacity;
    }
    resize(source_, slots_), resize(expert_in_, slots_ * d_), resize(expert_out_, slots_ * d_);
    b_.place(expert_.get(), kept_.get(), rank_.get(), offsets, routing_.capacity, assignments, slots_, slot_.get(),
             source_.get());
    b_.gather(x, nullptr, source_.get(), slots_, tokens, d_, expert_in_.get());
    local_rows_.assign(size_t(E), routing_.capacity);
    if (options.dropless()) {
      b_.copy_to_host(local_rows_.data(), counts_.get(), size_t(E) * sizeof(int64_t));
      b_.sync();
      for (int64_t& rows : local_rows_) rows = (rows + B::kSegmentRows - 1) / B::kSegmentRows * B::kSegmentRows;
    }
    if (ranks_) {
      // The rows per expert first, so that each owner knows its batches, then the rows.
      const int64_t world = ranks_->world(), per = E / world;
      owned_rows_of_.resize(size_t(E));
      const std::vector<int64_t> each(size_t(world), per * int64_t(sizeof(int64_t)));
      ranks_->all_to_all(local_rows_.data(), each, owned_rows_of_.data(), each);
      owned_rows_ = 0;
      for (const int64_t rows : owned_rows_of_) owned_rows_ += rows;
      resize(owned_in_, owned_rows_ * d_), resize(owned_out_, owned_rows_ * d_);
      exchange(expert_in_.get(), local_rows_, owned_in_.get(), owned_rows_of_);
      kept_acts_ = ffn_buffers_.reserve(cfg_.expert, owned_rows_);
      run_experts(nullptr, nullptr);
      exchange(owned_out_.get(), owned_rows_of_, expert_out_.get(), local_rows_);
    } else {
      kept_acts_ = ffn_buffers_.reserve(cfg_.expert, slots_);
      run_experts(nullptr, nullptr);
    }
    b_.combine(expert_out_.get(), gates_.get(), slot_.get(), tokens, k, d_, y);
  }

  // The router's linear and routing of `tokens` rows with `options`; false when there are no
  // tokens (the statistics are then zero and there is nothing to run).
  bool assign(const Act* x, int64_t tokens, const RouterOptions& options) {
    active_ = options;
    const int64_t E = cfg_.num_experts, assignments = options.top_k * tokens;
    x_ = x;
    tokens_ = tokens;
    if (tokens <= 0) {
      slots_ = 0;
      for (auto* buffer : {&counts_, &dropped_}) b_.zero(buffer->get(), buffer->bytes());
      b_.zero(aux_.get(), aux_.bytes());
      return false;
    }
    resize(logits_, tokens * E), resize(probs_, tokens * E), resize(gates_, assignments);
    resize(expert_, assignments), resize(rank_, assignments), resize(slot_, assignments), resize(kept_, assignments);
    router_logits(x, tokens);
    routing_ = Routing{};
    routing_.expert = expert_.get(), routing_.kept = kept_.get(), routing_.rank = rank_.get();
    routing_.counts = counts_.get(), routing_.first_counts = first_counts_.get();
    routing_.dropped = dropped_.get(), routing_.aux_loss = aux_.get();
    b_.route_forward(options, logits_.get(), tokens, E, probs_.get(), gates_.get(), routing_);
    return true;
  }

  // The router's linear layer: logits_ (tokens, E).
  void router_logits(const Act* x, int64_t tokens) {
    b_.linear_forward(x, p_.compute(router_w_), has_bias() ? p_.master(router_b_) : nullptr, logits_.get(), tokens, d_,
                      cfg_.num_experts);
  }

  cpu::ExpertActivation activation() const {
    switch (cfg_.expert.kind) {
      case FfnKind::SwiGLU: return cpu::ExpertActivation::SwiGLU;
      case FfnKind::GeGLU: return cpu::ExpertActivation::GeGLU;
      case FfnKind::Gelu: break;
    }
    return cpu::ExpertActivation::Gelu;
  }

  bool has_bias() const { return router_b_ != kNone; }
  FfnWeights<B> experts() const { return {p_.compute(fc1_), p_.compute(fc2_), p_.grad(fc1_), p_.grad(fc2_)}; }

  // The experts' forward over the slots, or their backward when dy is given: every expert over
  // this rank's slots, or (expert parallel) this rank's experts over each source's rows in turn,
  // each source's weight gradients apart (class comment).
  void run_experts(const Act* dy, Act* dx) {
    const Act* in = ranks_ ? owned_in_.get() : expert_in_.get();
    Act* out = ranks_ ? owned_out_.get() : expert_out_.get();
    const auto run = [&](const FfnWeights<B>& w, FfnBatch batch, int64_t row) {
      const FfnActivations<B> acts = kept_acts_.from_row(row, cfg_.expert.hidden);
      if (dy) {
        ffn_backward(b_, cfg_.expert, d_, w, batch, in + row * d_, acts, dy + row * d_, dx + row * d_);
      } else {
        ffn_forward(b_, cfg_.expert, d_, w, batch, in + row * d_, out + row * d_, acts);
      }
    };
    // `count` experts of w from `row` on, rows[j] rows each: one batch at a fixed capacity,
    // else one GEMM chain per expert. Returns the row after them.
    const auto run_block = [&](const FfnWeights<B>& w, const int64_t* rows, int64_t count, int64_t row) {
      if (!active_.dropless()) {
        run(w, {count, rows[0]}, row);
        return row + count * rows[0];
      }
      for (int64_t j = 0; j < count; ++j) {
        if (rows[j] > 0) run(w.group(j, cfg_.expert, d_), {1, rows[j]}, row);
        row += rows[j];
      }
      return row;
    };
    if (!ranks_) {
      run_block(experts(), local_rows_.data(), cfg_.num_experts, 0);
      return;
    }
    const int64_t world = ranks_->world(), per = cfg_.num_experts / world;
    const bool apart = p_.expert_sources() > 0;
    ML_CHECK(!apart || p_.expert_sources() == world - 1, "moe: ", p_.expert_sources(),
             " blocks of expert gradients kept for ", world - 1, " other ranks");
    const int64_t n1 = p_.spec(fc1_).held, n2 = p_.spec(fc2_).held;
    RealBuffer scratch1(dy && !apart ? n1 : 0, "moe backward"), scratch2(dy && !apart ? n2 : 0, "moe backward");
    int64_t row = 0;
    for (int64_t s = 0; s < world; ++s) {
      FfnWeights<B> w = experts();
      if (dy && s > 0 && apart) {
        w.dfc1 = p_.expert_source(fc1_, s - 1), w.dfc2 = p_.expert_source(fc2_, s - 1);
      } else if (dy && s > 0) {
        b_.zero(scratch1.get(), scratch1.bytes()), b_.zero(scratch2.get(), scratch2.bytes());
        w.dfc1 = scratch1.get(), w.dfc2 = scratch2.get();
      }
      row = run_block(w, owned_rows_of_.data() + s * per, per, row);
      if (dy && s > 0 && !apart) {
        b_.add_real_into(scratch1.get(), p_.grad(fc1_), n1);
        b_.add_real_into(scratch2.get(), p_.grad(fc2_), n2);
      }
    }
  }

  // Rows of d values to their experts' owners (or back): send holds send_rows[e] rows for each
  // expert e in order, so each rank's experts' rows are one block; recv gets recv_rows' likewise.
  void exchange(const Act* send, const std::vector<int64_t>& send_rows, Act* recv,
                const std::vector<int64_t>& recv_rows) const {
    const int64_t world = ranks_->world(), per = cfg_.num_experts / world, row_bytes = d_ * int64_t(sizeof(Act));
    std::vector<int64_t> out(size_t(world), 0), in(size_t(world), 0);
    for (int64_t e = 0; e < cfg_.num_experts; ++e)
      out[size_t(e / per)] += send_rows[size_t(e)] * row_bytes, in[size_t(e / per)] += recv_rows[size_t(e)] * row_bytes;
    if constexpr (kOnDevice<B>) {
      if (ranks_->device_sums()) return ranks_->all_to_all_device(send, out, recv, in, b_.stream());
      // Ranks that meet through shared memory exchange through the host.
      int64_t out_bytes = 0, in_bytes = 0;
      for (int64_t q = 0; q < world; ++q) out_bytes += out[size_t(q)], in_bytes += in[size_t(q)];
      std::vector<unsigned char> host_out(static_cast<size_t>(out_bytes)), host_in(static_cast<size_t>(in_bytes));
      b_.copy_to_host(host_out.data(), send, host_out.size());
      b_.sync();
      ranks_->all_to_all(host_out.data(), out, host_in.data(), in);
      b_.from_host(recv, host_in.data(), host_in.size());
    } else {
      ranks_->all_to_all(send, out, recv, in);
    }
  }

  static constexpr size_t kNone = size_t(-1);

  int64_t d_;
  MoeConfig cfg_;
  ParamStore<B>& p_;
  const B& b_;
  size_t router_w_ = 0, fc1_ = 0, fc2_ = 0, router_b_ = kNone;

  // Last forward: input, router outputs, routing, slots and the experts' inputs, outputs and
  // activations; for dropless, the per-expert counts on the host.
  const Act* x_ = nullptr;
  int64_t tokens_ = 0, slots_ = 0;
  ActBuffer logits_, probs_, gates_, expert_in_, expert_out_;
  ActBuffer decode_hidden_;  // a decode step's expert activations (ops/expert_decode)
  typename B::template Buffer<int32_t> expert_, rank_, slot_, source_;
  typename B::template Buffer<uint8_t> kept_;
  typename B::template Buffer<int64_t> counts_, first_counts_, offsets_, dropped_;
  typename B::template Buffer<double> aux_;
  RouterOptions active_;  // the last forward's routing options
  Routing routing_;
  // Rows of each expert in this rank's slots (dropless: counts rounded up to B::kSegmentRows).
  std::vector<int64_t> local_rows_;
  // Expert parallel: the ranks (null: off); for source s and this rank's expert j, the rows it
  // sent (owned_rows_of_[s·E/W + j]), their total, and their inputs and outputs, source by source.
  Collective* ranks_ = nullptr;
  std::vector<int64_t> owned_rows_of_;
  int64_t owned_rows_ = 0;
  ActBuffer owned_in_, owned_out_;
  FfnBuffers<B> ffn_buffers_;
  FfnActivations<B> kept_acts_;
};

}  // namespace ml
