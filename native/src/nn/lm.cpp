#include "lm.h"

#include <algorithm>
#include <sstream>

#include "../core/error.h"
#include "../ops/cross_entropy/cross_entropy.h"
#include "../ops/embedding/embedding.h"
#include "../ops/rmsnorm/rmsnorm.h"
#include "init.h"
#include "mlp.h"
#include "parallel.h"

namespace ml {

template <typename T>
LanguageModel<T>::LanguageModel(const ModelConfig& c) : cfg_(c) {
  ML_CHECK(c.vocab_size > 0, "model config: vocab_size must be positive, got ", c.vocab_size);
  ML_CHECK(c.padded_vocab >= c.vocab_size, "model config: padded_vocab (", c.padded_vocab, ") is below vocab_size (",
           c.vocab_size, ")");
  ML_CHECK(c.d_model > 0, "model config: d_model must be positive, got ", c.d_model);
  ML_CHECK(c.mamba.d_model == c.d_model, "model config: mamba.d_model (", c.mamba.d_model, ") differs from d_model (",
           c.d_model, ")");

  embedding_ = &params_.add("backbone.embedding.weight", {c.padded_vocab, c.d_model}, true);
  init_normal(*embedding_, c.seed, 0.02);
  std::vector<std::string> specs;
  std::istringstream words(c.layers);
  for (std::string w; words >> w;) specs.push_back(w);
  ML_CHECK(!specs.empty(), "model config: the layer pattern is empty");
  const int64_t n_layers = int64_t(specs.size());
  for (int64_t i = 0; i < n_layers; ++i) {
    const std::string prefix = "backbone.layers." + std::to_string(i) + ".";
    norms_.push_back(&params_.add(prefix + "norm.weight", {c.d_model}, false));
    init_constant(*norms_.back(), 1.0);
    const std::string& spec = specs[i];
    if (spec.size() == 1) {
      layers_.push_back(make_layer(spec[0], prefix, i, n_layers));
      continue;
    }
    // A parallel group "K|K|...": distinct kinds, so parameter names stay unique.
    std::vector<std::unique_ptr<Layer<T>>> branches;
    std::string seen;
    for (size_t j = 0; j < spec.size(); j += 2) {
      ML_CHECK((j + 1 == spec.size() || spec[j + 1] == '|') && seen.find(spec[j]) == std::string::npos,
               "model config: layer ", i, " has a malformed parallel group '", spec,
               "' (expected distinct kinds separated by '|')");
      seen += spec[j];
      branches.push_back(make_layer(spec[j], prefix, i, n_layers));
    }
    layers_.push_back(std::make_unique<ParallelLayer<T>>(c.d_model, std::move(branches)));
  }
  norm_f_ = &params_.add("backbone.norm_f.weight", {c.d_model}, false);
  init_constant(*norm_f_, 1.0);
}

template <typename T>
std::unique_ptr<Layer<T>> LanguageModel<T>::make_layer(char kind, const std::string& prefix, int64_t index,
                                                       int64_t n_layers) {
  switch (kind) {
    case 'M':
      return std::make_unique<MambaMixer<T>>(cfg_.mamba, params_, prefix + "mixer.", cfg_.seed, n_layers);
    case 'E':
      return std::make_unique<MoeLayer<T>>(cfg_.d_model, cfg_.moe, params_, prefix + "moe.", cfg_.seed, n_layers);
    case 'F':
      return std::make_unique<MlpLayer<T>>(cfg_.d_model, cfg_.mlp, params_, prefix + "mlp.", cfg_.seed, n_layers);
    default:
      throw Error(detail::concat("model config: layer ", index, " has unknown kind '", kind,
                                 "' (this engine builds: M Mamba mixer, E mixture of experts, F dense MLP)"));
  }
}

template <typename T>
double LanguageModel<T>::aux_loss() const {
  double total = 0;
  for (const auto& layer : layers_) total += layer->aux_loss();
  return total;
}

template <typename T>
std::vector<const cpu::Routing*> LanguageModel<T>::routings() const {
  std::vector<const cpu::Routing*> out;
  for (const auto& layer : layers_) layer->routings(out);
  return out;
}

template <typename T>
double LanguageModel<T>::forward(const int32_t* tokens, int64_t batch, int64_t len_plus_one, bool training) {
  ML_CHECK(batch > 0, "forward: batch size must be positive, got ", batch);
  ML_CHECK(len_plus_one >= 2, "forward: each sequence needs at least 2 tokens (input and target), got ", len_plus_one);
  const int64_t len = len_plus_one - 1, rows = batch * len, d = cfg_.d_model, n = int64_t(layers_.size());
  cpu::check_token_ids(tokens, batch * len_plus_one, cfg_.vocab_size);
  for (auto& layer : layers_) layer->set_training(training);

  if (batch != batch_ || len != len_) {
    batch_ = batch, len_ = len;
    inputs_.resize(rows), targets_.resize(rows);
    residual_.assign(n + 1, Tensor<T>());
    normed_.assign(n + 1, Tensor<T>());
    rstd_.assign(n + 1, Tensor<T>());
    for (int64_t i = 0; i <= n; ++i) {
      residual_[i] = Tensor<T>({rows, d});
      normed_[i] = Tensor<T>({rows, d});
      rstd_[i] = Tensor<T>({rows});
    }
    lse_ = Tensor<T>({rows});
  }
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t t = 0; t < len; ++t) {
      inputs_[b * len + t] = tokens[b * len_plus_one + t];
      targets_[b * len + t] = tokens[b * len_plus_one + t + 1];
    }

  cpu::embedding_forward<T>(inputs_.data(), embedding_->value.data(), residual_[0].data(), rows, d);
  Tensor<T> mixed({rows, d});
  for (int64_t i = 0; i <= n; ++i) {
    // r_i = r_{i−1} + layer_{i−1}(n_{i−1}) (r_0 is the embedding), fused with norm i;
    // norm n is norm_f.
    const T* prev = i == 0 ? residual_[0].data() : residual_[i - 1].data();
    const T* add = i == 0 ? nullptr : mixed.data();
    const T* weight = i < n ? norms_[i]->value.data() : norm_f_->value.data();
    cpu::rmsnorm_forward<T>(prev, add, weight, residual_[i].data(), normed_[i].data(), rstd_[i].data(), rows, d,
                            T(cfg_.norm_eps));
    if (i < n) layers_[i]->forward(normed_[i].data(), mixed.data(), batch, len);
  }
  return cpu::cross_entropy_forward<T>({rows, d, cfg_.padded_vocab}, normed_[n].data(), embedding_->value.data(),
                                       targets_.data(), lse_.data());
}

template <typename T>
void LanguageModel<T>::backward() {
  ML_CHECK(batch_ > 0, "backward: call forward first");
  const int64_t rows = batch_ * len_, d = cfg_.d_model, n = int64_t(layers_.size());
  Tensor<T> dnormed({rows, d}), dres({rows, d}), dres_prev({rows, d});
  cpu::cross_entropy_backward<T>({rows, d, cfg_.padded_vocab}, normed_[n].data(), embedding_->value.data(),
                                 targets_.data(), lse_.data(), T(1), dnormed.data(), embedding_->grad.data());
  cpu::rmsnorm_backward<T>(residual_[n].data(), rstd_[n].data(), norm_f_->value.data(), dnormed.data(), nullptr,
                           dres.data(), norm_f_->grad.data(), rows, d);
  for (int64_t i = n - 1; i >= 0; --i) {
    // dres is d(loss)/d(r_{i+1}); r_{i+1} = r_i + layer_i(n_i) passes it to both terms.
    layers_[i]->backward(dres.data(), dnormed.data());
    cpu::rmsnorm_backward<T>(residual_[i].data(), rstd_[i].data(), norms_[i]->value.data(), dnormed.data(),
                             dres.data(), dres_prev.data(), norms_[i]->grad.data(), rows, d);
    std::swap(dres, dres_prev);
  }
  cpu::embedding_backward<T>(inputs_.data(), dres.data(), embedding_->grad.data(), rows, d);
}

template <typename T>
void LanguageModel<T>::zero_grad() {
  for (size_t i = 0; i < params_.size(); ++i) params_[i].grad.fill(T(0));
}

template class LanguageModel<float>;
template class LanguageModel<double>;

}  // namespace ml
