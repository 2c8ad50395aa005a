// A language model over a residual stream, the layout of mamba_ssm's MambaLMHeadModel:
//   r_1 = embed(tokens);  for each layer i: n_i = norm_i(r_i),  r_{i+1} = r_i + layer_i(n_i)
//   loss = cross_entropy(norm_f(r_L) · embeddingᵀ, next tokens)        (LM head tied)
// norm_f is RMSNorm, or LayerNorm with a bias where the config says so (BlackMamba).
// on backend B: B::Act activations, the residual stream and its gradient in B::Real (fp32 on
// the GPU, as the reference's residual_in_fp32). Nothing here waits for the device: the loss
// stays in the backend's memory until the runtime reads the step's metrics.
// Generation (at inference): prefill runs a sequence's prompt through the same layers in
// parallel and leaves each layer's recurrent state in that sequence's row; decode then takes
// one token per sequence through every layer's recurrent step. Both end in the head's logits
// (norm_f(r) · embeddingᵀ, B::Real), which generate/ samples from. A decode step has buffers of
// its own and waits for nothing, so its work (decode_uploaded) can be captured as a CUDA graph
// and replayed for every token after upload_decode has put the tokens on the device.
#pragma once
#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "../ops/cross_entropy/cross_entropy.h"
#include "../ops/embedding/embedding.h"
#include "attention.h"
#include "config.h"
#include "layer.h"
#include "mamba.h"
#include "mlp.h"
#include "moe.h"
#include "parallel.h"
#include "params.h"

namespace ml {

template <class B>
class LanguageModel {
 public:
  using Act = typename B::Act;
  using Real = typename B::Real;
  using Stat = typename B::Stat;

  // Checks the config, declares every layer's parameters and draws them from config.seed; with
  // `allocate` false, the drawing waits for allocate_params (train/model_runtime.h: until then a
  // rank can take its block of the experts without ever holding the others).
  LanguageModel(const ModelConfig& config, const B& backend, bool allocate = true)
      : cfg_(config), b_(backend), params_(backend) {
    const ModelConfig& c = cfg_;
    ML_CHECK(c.vocab_size > 0, "model config: vocab_size must be positive, got ", c.vocab_size);
    ML_CHECK(c.pad_vocab_multiple > 0, "model config: pad_vocab_multiple must be positive, got ",
             c.pad_vocab_multiple);
    ML_CHECK(c.d_model > 0, "model config: d_model must be positive, got ", c.d_model);
    ML_CHECK(c.mamba.d_model == c.d_model, "model config: mamba.d_model (", c.mamba.d_model,
             ") differs from d_model (", c.d_model, ")");
    ML_CHECK(!c.layers.empty(), "model config: the layer pattern is empty");
    ML_CHECK(c.max_positions >= 0, "model config: max_positions must be ≥ 0, got ", c.max_positions);
    embedding_ = params_.add("backbone.embedding.weight", {c.padded_vocab(), c.d_model}, true, ParamInit::normal(0.02));
    if (c.max_positions > 0)
      positions_ = params_.add("backbone.pos_embedding.weight", {c.max_positions, c.d_model}, true,
                               ParamInit::normal(0.02));
    const int64_t n = int64_t(c.layers.size());
    for (int64_t i = 0; i < n; ++i) {
      const std::string prefix = "backbone.layers." + std::to_string(i) + ".";
      norms_.push_back(params_.add(prefix + "norm.weight", {c.d_model}, false, ParamInit::constant(1.0)));
      const LayerSpec& spec = c.layers[size_t(i)];
      ML_CHECK(!spec.empty(), "model config: layer ", i, " is empty");
      std::vector<std::unique_ptr<Layer<B>>> branches;
      for (size_t j = 0; j < spec.size(); ++j) {
        ML_CHECK(std::find(spec.begin(), spec.begin() + j, spec[j]) == spec.begin() + j, "model config: layer ", i,
                 " repeats '", spec[j], "' in its parallel group (branches must differ, so names stay unique)");
        branches.push_back(make_layer(spec[j], prefix, i, n));
      }
      layers_.push_back(branches.size() == 1 ? std::move(branches[0])
                                             : std::make_unique<ParallelLayer<B>>(b_, c.d_model, std::move(branches)));
    }
    norm_f_ = params_.add("backbone.norm_f.weight", {c.d_model}, false, ParamInit::constant(1.0));
    if (c.final_norm == NormKind::LayerNorm)
      norm_f_bias_ = params_.add("backbone.norm_f.bias", {c.d_model}, false, ParamInit::constant(0.0));
    if (allocate) allocate_params();
  }
  // Makes and draws the parameters, unless they are already.
  void allocate_params() {
    if (!params_.allocated()) params_.allocate(cfg_.seed);
  }

  const ModelConfig& config() const { return cfg_; }
  const B& backend() const { return b_; }
  ParamStore<B>& params() { return params_; }
  const ParamStore<B>& params() const { return params_; }

  // tokens: host (batch, len + 1) int32; inputs are tokens[:, :len], targets tokens[:, 1:].
  // `training` selects routers' training behaviour (Sinkhorn balancing) and keeps what the
  // backward needs; it also runs the head's backward (the loss is the last op, so its gradient
  // is known with the logits, which are then made once): the tied embedding's gradient gets the
  // head's share here, and the backward (one for each training forward) starts from d(normed_f).
  void forward(const int32_t* tokens, int64_t batch, int64_t len_plus_one, bool training) {
    upload(tokens, batch, len_plus_one);
    forward_uploaded(training);
  }
  // forward's two halves, so that a CUDA graph can replay the second: upload checks the ids,
  // (re)allocates the activations when the shape changes and copies the ids to the device;
  // forward_uploaded only enqueues work.
  void upload(const int32_t* tokens, int64_t batch, int64_t len_plus_one) {
    ML_CHECK(batch > 0, "forward: batch size must be positive, got ", batch);
    ML_CHECK(len_plus_one >= 2, "forward: each sequence needs at least 2 tokens (input and target), got ",
             len_plus_one);
    const int64_t len = len_plus_one - 1, rows = batch * len, d = cfg_.d_model, n = int64_t(layers_.size());
    cpu::check_token_ids(tokens, batch * len_plus_one, cfg_.vocab_size);
    ML_CHECK(!has_positions() || len <= cfg_.max_positions, "forward: sequences of ", len,
             " tokens are longer than the learned position embeddings allow (max_positions ", cfg_.max_positions, ")");
    if (batch != batch_ || len != len_) {
      batch_ = batch, len_ = len;
      ++generation_;
      if (has_positions()) {
        std::vector<int32_t> position(static_cast<size_t>(rows));
        for (int64_t r = 0; r < rows; ++r) position[size_t(r)] = int32_t(r % len);
        position_ids_ = Buffer<int32_t>(rows, "position ids");
        position_rows_ = Buffer<Act>(rows * d, "position embeddings");
        b_.from_host(position_ids_.get(), position.data(), position_ids_.bytes());
      }
      ids_host_.resize(size_t(2 * rows));
      ids_ = Buffer<int32_t>(2 * rows, "token ids");
      residual_.clear(), rstd_.clear(), normed_.clear();
      for (int64_t i = 0; i <= n; ++i) {
        residual_.emplace_back(rows * d, "residual stream");
        rstd_.emplace_back(rows, "norm statistics");
        normed_.emplace_back(rows * d, "normed activations");
      }
      mixed_ = Buffer<Act>(rows * d, "layer outputs");
      if (layernorm_f()) mean_f_ = Buffer<Real>(rows, "norm statistics");
      lse_ = Buffer<Real>(rows, "log-sum-exp");
      loss_ = Buffer<Stat>(1, "loss");
    }
    for (int64_t r = 0; r < batch; ++r)
      for (int64_t t = 0; t < len; ++t) {
        ids_host_[size_t(r * len + t)] = tokens[r * len_plus_one + t];
        ids_host_[size_t(rows + r * len + t)] = tokens[r * len_plus_one + t + 1];
      }
    b_.from_host(ids_.get(), ids_host_.data(), ids_.bytes());
  }

  void forward_uploaded(bool training) {
    ML_CHECK(batch_ > 0, "forward: upload a batch first");
    const int64_t rows = batch_ * len_, d = cfg_.d_model, n = int64_t(layers_.size());
    for (auto& layer : layers_) layer->set_training(training);
    const int32_t *inputs = ids_.get(), *targets = ids_.get() + rows;
    // r_0 = embed(tokens) (+ the learned positions) goes through norm 0 as its x (no residual yet).
    b_.embedding_forward(inputs, params_.compute(embedding_), mixed_.get(), rows, d);
    if (has_positions()) {
      b_.embedding_forward(position_ids_.get(), params_.compute(positions_), position_rows_.get(), rows, d);
      b_.add_into(position_rows_.get(), mixed_.get(), rows * d);
    }
    for (int64_t i = 0; i <= n; ++i) {
      const Real* prev = i == 0 ? nullptr : residual_[size_t(i - 1)].get();
      const Real* weight = params_.master(i < n ? norms_[size_t(i)] : norm_f_);
      if (i == n && layernorm_f()) {
        b_.layernorm_forward(mixed_.get(), prev, weight, params_.master(norm_f_bias_), residual_[size_t(i)].get(),
                             normed_[size_t(i)].get(), mean_f_.get(), rstd_[size_t(i)].get(), rows, d, cfg_.norm_eps);
        continue;
      }
      b_.rmsnorm_forward(mixed_.get(), prev, weight, residual_[size_t(i)].get(), normed_[size_t(i)].get(),
                         rstd_[size_t(i)].get(), rows, d, cfg_.norm_eps);
      if (i < n) layers_[size_t(i)]->forward(normed_[size_t(i)].get(), mixed_.get(), batch_, len_);
    }
    if (training) {  // the loss is the last op: its gradient, and the head's, are known now
      head_grad_ = Buffer<Real>(rows * d, "head gradient");
      b_.cross_entropy_forward_backward(head(), normed_[size_t(n)].get(), params_.compute(embedding_), targets,
                                        lse_.get(), loss_.get(), 1.0, head_grad_.get(), params_.grad(embedding_));
    } else {
      b_.cross_entropy_forward(head(), normed_[size_t(n)].get(), params_.compute(embedding_), targets, lse_.get(),
                               loss_.get());
    }
    trained_forward_ = training;
  }

  // Mean cross-entropy of the last forward, in the backend's memory.
  const Stat* loss() const { return loss_.get(); }
  // Accumulates every parameter's gradient of the cross-entropy plus the auxiliary losses.
  // final_from(offset), when given, is told (with the work enqueued so far) each time the
  // gradients from `offset` to the end of the flat buffer have their final values: the layers
  // finish back to front, and the parameters are laid out in the order declared (ParamStore):
  // the embedding (and positions) first, then each layer's pre-norm and its own parameters, then
  // norm_f. So norm_f's are final after the head, layer i's with its pre-norm's backward, and the
  // embedding's, which the tied head adds to, only at the end (offset 0).
  void backward(const std::function<void(int64_t offset)>& final_from = nullptr) {
    ML_CHECK(batch_ > 0 && trained_forward_ && head_grad_.get(),
             "backward: call forward (training) first, once for each backward");
    const int64_t rows = batch_ * len_, d = cfg_.d_model, n = int64_t(layers_.size());
    const int32_t* inputs = ids_.get();
    // d(loss)/d(normed_f) from the training forward (which added the head's share of the
    // embedding's gradient), then through norm_f into the residual stream.
    Buffer<Real> dres(rows * d, "residual gradient"), dres_prev = std::move(head_grad_);
    Buffer<Act> dnormed(rows * d, "normed gradient"), dres_act;
    Real* dhead = dres_prev.get();
    if (layernorm_f()) {
      b_.layernorm_backward(residual_[size_t(n)].get(), mean_f_.get(), rstd_[size_t(n)].get(), params_.master(norm_f_),
                            b_.as_act(dhead, dres_act, rows * d), nullptr, dres.get(), params_.grad(norm_f_),
                            params_.grad(norm_f_bias_), rows, d);
    } else {
      b_.rmsnorm_backward(residual_[size_t(n)].get(), rstd_[size_t(n)].get(), params_.master(norm_f_),
                          b_.as_act(dhead, dres_act, rows * d), nullptr, dres.get(), params_.grad(norm_f_), rows, d);
    }
    if (final_from) final_from(params_.spec(norm_f_).offset);
    for (int64_t i = n - 1; i >= 0; --i) {
      // dres is d(loss)/d(r_{i+1}); r_{i+1} = r_i + layer_i(n_i) passes it to both terms.
      layers_[size_t(i)]->backward(b_.as_act(dres.get(), dres_act, rows * d), dnormed.get());
      b_.rmsnorm_backward(residual_[size_t(i)].get(), rstd_[size_t(i)].get(), params_.master(norms_[size_t(i)]),
                          dnormed.get(), dres.get(), dres_prev.get(), params_.grad(norms_[size_t(i)]), rows, d);
      std::swap(dres, dres_prev);
      if (final_from) final_from(params_.spec(norms_[size_t(i)]).offset);
    }
    const Act* dembedded = b_.as_act(dres.get(), dres_act, rows * d);
    b_.embedding_backward(inputs, dembedded, params_.grad(embedding_), rows, d, cfg_.padded_vocab());
    if (has_positions())
      b_.embedding_backward(position_ids_.get(), dembedded, params_.grad(positions_), rows, d, cfg_.max_positions);
    if (final_from) final_from(0);
  }
  void zero_grad() { b_.zero(params_.grads(), size_t(params_.total()) * sizeof(Real)); }

  // Generation: room for `batch` sequences of up to `capacity` tokens (prompt and generated).
  void start_generation(int64_t batch, int64_t capacity) {
    ML_CHECK(batch > 0, "generate: batch size must be positive, got ", batch);
    ML_CHECK(capacity > 0, "generate: capacity must be positive, got ", capacity);
    for (auto& layer : layers_) {
      layer->set_training(false);
      layer->start_generation(batch, capacity);
    }
    gen_batch_ = batch, gen_capacity_ = capacity;
    gen_positions_.assign(size_t(batch), 0);
    reserve(decode_pass_, batch);
  }
  int64_t generation_batch() const { return gen_batch_; }
  // Tokens in sequence `row`'s state so far.
  int64_t generation_length(int64_t row) const { return gen_positions_.at(size_t(row)); }

  // The prompt of sequence `row` (host, len ≥ 1 tokens) through the parallel forward, leaving
  // every layer's state in its row. Returns the logits (backend memory, padded_vocab per row) of
  // every position (len rows) or of the last (1 row).
  const Real* prefill(int64_t row, const int32_t* tokens, int64_t len, bool every_position) {
    ML_CHECK(row >= 0 && row < gen_batch_, "generate: row ", row, " is outside the batch of ", gen_batch_);
    ML_CHECK(len >= 1 && len <= gen_capacity_, "generate: a prompt of ", len, " tokens (at most ", gen_capacity_,
             " fit, at least 1 is needed)");
    check_generation_ids(tokens, len, len);
    std::vector<int32_t> positions(static_cast<size_t>(len));
    for (int64_t t = 0; t < len; ++t) positions[size_t(t)] = int32_t(t);
    reserve(prefill_pass_, len);
    upload(prefill_pass_, tokens, positions.data());
    const Act* h = run_generation(
        prefill_pass_, [&](Layer<B>& layer, const Act* x, Act* y) { layer.prefill(x, y, len, row); },
        [](Layer<B>&, const PreNormInput<B>&, Act*) { return false; });
    gen_positions_[size_t(row)] = int32_t(len);
    const int64_t rows = every_position ? len : 1;
    return logits(prefill_pass_, h + (len - rows) * cfg_.d_model, rows);
  }

  // One token per sequence (host, generation_batch() of them) through every layer's recurrent
  // step. Returns the logits (backend memory, batch rows of padded_vocab).
  const Real* decode(const int32_t* tokens) {
    upload_decode(tokens);
    return decode_uploaded();
  }
  // decode's two halves: upload_decode checks the tokens and copies them and their positions
  // to the device; decode_uploaded only enqueues work on buffers that stay put until the next
  // start_generation, and returns where the logits will be.
  void upload_decode(const int32_t* tokens) {
    const int64_t batch = gen_batch_;
    ML_CHECK(batch > 0, "generate: call start_generation first");
    for (int64_t r = 0; r < batch; ++r)
      ML_CHECK(gen_positions_[size_t(r)] < gen_capacity_, "generate: sequence ", r, " is full (", gen_capacity_,
               " tokens)");
    check_generation_ids(tokens, batch, *std::max_element(gen_positions_.begin(), gen_positions_.end()) + 1);
    upload(decode_pass_, tokens, gen_positions_.data());
    for (auto& p : gen_positions_) ++p;
  }
  const Real* decode_uploaded() {
    const DecodeStep step{gen_batch_, decode_pass_.positions()};
    const Act* h = run_generation(
        decode_pass_, [&](Layer<B>& layer, const Act* x, Act* y) { layer.decode(x, y, step); },
        [&](Layer<B>& layer, const PreNormInput<B>& in, Act* y) { return layer.decode_from_residual(in, y, step); });
    return logits(decode_pass_, h, gen_batch_);
  }

  // Whether a step can be captured into a CUDA graph (no layer reads values on the host).
  bool capturable() const {
    for (const auto& layer : layers_)
      if (!layer->capturable()) return false;
    return true;
  }
  // Changes whenever activation buffers are reallocated (a captured step is then stale).
  int64_t buffers_generation() const { return generation_; }
  // Expert parallel over `ranks` for every mixture of experts (null: off); see nn/moe.h.
  void share_experts(Collective* ranks) {
    for (auto& layer : layers_) layer->share_experts(ranks);
  }
  // The last forward's routing statistics, one entry per mixture of experts, in layer order.
  std::vector<ExpertStats> expert_stats() const {
    std::vector<ExpertStats> out;
    for (const auto& layer : layers_) layer->expert_stats(out);
    return out;
  }

 private:
  template <typename U>
  using Buffer = typename B::template Buffer<U>;

  std::unique_ptr<Layer<B>> make_layer(char kind, const std::string& prefix, int64_t index, int64_t n_layers) {
    switch (kind) {
      case 'M':
        return std::make_unique<MambaMixer<B>>(cfg_.mamba, params_, prefix + "mixer.", n_layers);
      case 'E':
        return std::make_unique<MoeLayer<B>>(cfg_.d_model, cfg_.moe, params_, prefix + "moe.", n_layers);
      case 'F':
        return std::make_unique<MlpLayer<B>>(cfg_.d_model, cfg_.mlp, params_, prefix + "mlp.", n_layers);
      case 'A':
        return std::make_unique<AttentionLayer<B>>(cfg_.d_model, cfg_.attention, params_, prefix + "attn.", n_layers);
      default:
        throw Error(detail::concat("model config: layer ", index, " has unknown kind '", kind,
                                   "' (this engine builds: M Mamba mixer, E mixture of experts, F dense MLP, ",
                                   "A attention)"));
    }
  }
  cpu::HeadDims head() const { return {batch_ * len_, cfg_.d_model, cfg_.padded_vocab()}; }

  // Generation's ids must be in the vocabulary and, with learned positions, within their reach.
  void check_generation_ids(const int32_t* tokens, int64_t n, int64_t length) const {
    cpu::check_token_ids(tokens, n, cfg_.vocab_size);
    ML_CHECK(!has_positions() || length <= cfg_.max_positions, "generate: ", length,
             " tokens are more than the learned position embeddings reach (max_positions ", cfg_.max_positions, ")");
  }

  // The buffers of one generation pass of `rows` rows: a prompt's prefill or a decode step.
  struct GenerationPass {
    int64_t rows = -1;
    Buffer<int32_t> ids;  // the tokens, then their positions
    Buffer<Real> residual[2], rstd, mean, logits;
    Buffer<Act> normed, mixed, position_rows;
    const int32_t* positions() const { return ids.get() + rows; }
  };

  void reserve(GenerationPass& pass, int64_t rows) {
    if (pass.rows == rows) return;
    const int64_t d = cfg_.d_model;
    pass.rows = rows;
    pass.ids = Buffer<int32_t>(2 * rows, "token ids");
    for (auto& r : pass.residual) r = Buffer<Real>(rows * d, "residual stream");
    pass.rstd = Buffer<Real>(rows, "norm statistics");
    pass.mean = Buffer<Real>(layernorm_f() ? rows : 0, "norm statistics");
    pass.normed = Buffer<Act>(rows * d, "normed activations");
    pass.mixed = Buffer<Act>(rows * d, "layer outputs");
    pass.position_rows = Buffer<Act>(has_positions() ? rows * d : 0, "position embeddings");
  }
  // The pass's tokens and their positions (host) onto the device.
  void upload(GenerationPass& pass, const int32_t* tokens, const int32_t* positions) {
    const size_t bytes = size_t(pass.rows) * sizeof(int32_t);
    b_.from_host(pass.ids.get(), tokens, bytes);
    b_.from_host(pass.ids.get() + pass.rows, positions, bytes);
  }

  // Embeds the pass's uploaded tokens at their positions, runs every layer as `step(layer, x,
  // y)` says with the residual stream between them, and returns norm_f's output. A layer for
  // which `from_residual(layer, pre-norm input, y)` returns true has run from before its norm.
  template <typename Step, typename FromResidual>
  const Act* run_generation(GenerationPass& pass, Step&& step, FromResidual&& from_residual) {
    const int64_t d = cfg_.d_model, n = int64_t(layers_.size()), rows = pass.rows;
    b_.embedding_forward(pass.ids.get(), params_.compute(embedding_), pass.mixed.get(), rows, d);
    if (has_positions()) {
      b_.embedding_forward(pass.positions(), params_.compute(positions_), pass.position_rows.get(), rows, d);
      b_.add_into(pass.position_rows.get(), pass.mixed.get(), rows * d);
    }
    for (int64_t i = 0; i <= n; ++i) {
      const Real* prev = i == 0 ? nullptr : pass.residual[(i + 1) % 2].get();
      const Real* weight = params_.master(i < n ? norms_[size_t(i)] : norm_f_);
      if (i == n && layernorm_f()) {  // as forward(): BlackMamba's final norm
        b_.layernorm_forward(pass.mixed.get(), prev, weight, params_.master(norm_f_bias_), pass.residual[i % 2].get(),
                             pass.normed.get(), pass.mean.get(), pass.rstd.get(), rows, d, cfg_.norm_eps);
        break;
      }
      if (i < n && from_residual(*layers_[size_t(i)],
                                 PreNormInput<B>{pass.mixed.get(), prev, weight, pass.residual[i % 2].get(), cfg_.norm_eps},
                                 pass.mixed.get()))
        continue;
      b_.rmsnorm_forward(pass.mixed.get(), prev, weight, pass.residual[i % 2].get(), pass.normed.get(),
                         pass.rstd.get(), rows, d, cfg_.norm_eps);
      if (i < n) step(*layers_[size_t(i)], pass.normed.get(), pass.mixed.get());
    }
    return pass.normed.get();
  }

  // The tied head's logits of `rows` rows of h: (rows, padded_vocab) in B::Real, in the pass's
  // buffer (which only grows, so a decode step's stays put).
  const Real* logits(GenerationPass& pass, const Act* h, int64_t rows) {
    const int64_t d = cfg_.d_model, V = cfg_.padded_vocab();
    if (pass.logits.size() < rows * V) pass.logits = Buffer<Real>(rows * V, "logits");
    b_.gemm_batched(false, true, rows, V, d, 1.f, h, d, rows * d, params_.compute(embedding_), d, V * d, 0.f,
                    pass.logits.get(), V, rows * V, 1, /*b_is_weight=*/true);
    return pass.logits.get();
  }
  bool has_positions() const { return cfg_.max_positions > 0; }
  bool layernorm_f() const { return cfg_.final_norm == NormKind::LayerNorm; }

  ModelConfig cfg_;
  const B& b_;
  ParamStore<B> params_;
  size_t embedding_ = 0, positions_ = 0, norm_f_ = 0, norm_f_bias_ = 0;
  std::vector<size_t> norms_;
  std::vector<std::unique_ptr<Layer<B>>> layers_;

  int64_t batch_ = 0, len_ = 0, generation_ = 0;
  bool trained_forward_ = false;
  std::vector<int32_t> ids_host_;  // inputs then targets
  Buffer<int32_t> ids_;
  Buffer<int32_t> position_ids_;  // each row's position in its sequence (learned positions only)
  Buffer<Act> position_rows_;
  // residual_[i] is r_i, normed_[i] the output of norm i, rstd_[i] its statistics; the last
  // entries belong to norm_f. lse_: the head's per-row log-sum-exp.
  std::vector<Buffer<Real>> residual_, rstd_;
  std::vector<Buffer<Act>> normed_;
  Buffer<Real> mean_f_;  // norm_f's means, when it is a LayerNorm
  Buffer<Act> mixed_;
  Buffer<Real> lse_;
  Buffer<Stat> loss_;
  Buffer<Real> head_grad_;  // d(loss)/d(normed_f), from the training forward until its backward

  // Generation: the batch and each sequence's length so far (host); the buffers of prefills
  // and of decode steps.
  int64_t gen_batch_ = 0, gen_capacity_ = 0;
  std::vector<int32_t> gen_positions_;
  GenerationPass prefill_pass_, decode_pass_;
};

}  // namespace ml
