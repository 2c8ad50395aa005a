#include "moe.h"

#include <algorithm>
#include <cmath>

#include "../core/error.h"
#include "../ops/linear/linear.h"
#include "init.h"

namespace ml {

template <typename T>
MoeLayer<T>::MoeLayer(int64_t d, const MoeConfig& c, ParamList<T>& params, const std::string& prefix, uint64_t seed,
                      int64_t n_residual_layers)
    : d_(d),
      cfg_(c),
      router_w_(params.add(prefix + "router.weight", {c.num_experts, d}, true)),
      fc1_(params.add(prefix + "experts.fc1.weight", {c.num_experts, c.expert.fc1_rows(), d}, true)),
      fc2_(params.add(prefix + "experts.fc2.weight", {c.num_experts, d, c.expert.hidden}, true)) {
  ML_CHECK(c.num_experts >= 1, "moe: num_experts must be at least 1, got ", c.num_experts);
  ML_CHECK(c.expert.hidden > 0, "moe: expert hidden size must be positive, got ", c.expert.hidden);
  ML_CHECK(c.router.top_k >= 1 && c.router.top_k <= c.num_experts, "moe: top_k must be in [1, ", c.num_experts,
           "], got ", c.router.top_k);
  if (c.router_bias) router_b_ = &params.add(prefix + "router.bias", {c.num_experts}, false);  // zero-initialised
  init_uniform(router_w_, seed, 1.0 / std::sqrt(double(d)));
  init_uniform(fc1_, seed, 1.0 / std::sqrt(double(d)));
  init_uniform(fc2_, seed, 1.0 / std::sqrt(double(c.expert.hidden)) / std::sqrt(double(n_residual_layers)));
}

template <typename T>
FfnWeights<T> MoeLayer<T>::expert_weights(int64_t e) {
  const int64_t fc1_size = cfg_.expert.fc1_rows() * d_, fc2_size = d_ * cfg_.expert.hidden;
  return {fc1_.value.data() + e * fc1_size, fc2_.value.data() + e * fc2_size, fc1_.grad.data() + e * fc1_size,
          fc2_.grad.data() + e * fc2_size};
}

template <typename T>
void MoeLayer<T>::forward(const T* x, T* y, int64_t batch, int64_t len) {
  const int64_t rows = batch * len, E = cfg_.num_experts, k = cfg_.router.top_k;
  x_ = Tensor<T>({rows, d_});
  std::copy_n(x, rows * d_, x_.data());
  logits_ = Tensor<T>({rows, E}), probs_ = Tensor<T>({rows, E}), gates_ = Tensor<T>({k * rows});
  cpu::linear_forward<T>(x, router_w_.value.data(), router_b_ ? router_b_->value.data() : nullptr, logits_.data(),
                         rows, d_, E);
  cpu::route_forward<T>(cfg_.router, logits_.data(), rows, E, probs_.data(), gates_.data(), routing_);

  assigned_.assign(E, {});
  for (int64_t a = 0; a < k * rows; ++a)
    if (routing_.kept[a]) assigned_[routing_.expert[a]].push_back(a);
  caches_.assign(E, FfnCache<T>());
  outputs_.assign(E, Tensor<T>());
  std::fill_n(y, rows * d_, T(0));
  for (int64_t e = 0; e < E; ++e) {
    const auto& mine = assigned_[e];
    if (mine.empty()) continue;
    const int64_t n = int64_t(mine.size());
    // Tokens routed to e, gathered into contiguous rows.
    Tensor<T> gathered({n, d_});
    for (int64_t j = 0; j < n; ++j) std::copy_n(x + (mine[j] % rows) * d_, d_, gathered.data() + j * d_);
    outputs_[e] = Tensor<T>({n, d_});
    ffn_forward(cfg_.expert, d_, expert_weights(e), gathered.data(), n, outputs_[e].data(), caches_[e]);
    for (int64_t j = 0; j < n; ++j) {
      const T gate = gates_.data()[mine[j]];
      T* dst = y + (mine[j] % rows) * d_;
      const T* src = outputs_[e].data() + j * d_;
      for (int64_t i = 0; i < d_; ++i) dst[i] += gate * src[i];
    }
  }
}

template <typename T>
void MoeLayer<T>::backward(const T* dy, T* dx) {
  ML_CHECK(!x_.empty(), "moe: backward called before forward");
  const int64_t rows = x_.dim(0), E = cfg_.num_experts, k = cfg_.router.top_k;
  Tensor<T> dgates = Tensor<T>::zeros({k * rows});
  std::fill_n(dx, rows * d_, T(0));
  for (int64_t e = 0; e < E; ++e) {
    const auto& mine = assigned_[e];
    if (mine.empty()) continue;
    const int64_t n = int64_t(mine.size());
    Tensor<T> dout({n, d_}), dgathered({n, d_});
    for (int64_t j = 0; j < n; ++j) {
      const T* g = dy + (mine[j] % rows) * d_;
      const T* out = outputs_[e].data() + j * d_;
      const T gate = gates_.data()[mine[j]];
      double dgate = 0;
      for (int64_t i = 0; i < d_; ++i) {
        dout.data()[j * d_ + i] = gate * g[i];
        dgate += double(g[i]) * double(out[i]);
      }
      dgates.data()[mine[j]] = T(dgate);
    }
    ffn_backward(cfg_.expert, d_, expert_weights(e), caches_[e], dout.data(), dgathered.data());
    for (int64_t j = 0; j < n; ++j) {
      T* dst = dx + (mine[j] % rows) * d_;
      const T* src = dgathered.data() + j * d_;
      for (int64_t i = 0; i < d_; ++i) dst[i] += src[i];
    }
  }
  Tensor<T> dlogits({rows, E});
  cpu::route_backward<T>(cfg_.router, logits_.data(), probs_.data(), routing_, dgates.data(), dlogits.data());
  cpu::linear_backward<T>(x_.data(), router_w_.value.data(), dlogits.data(), dx, router_w_.grad.data(),
                          router_b_ ? router_b_->grad.data() : nullptr, rows, d_, E, true);
}

template class MoeLayer<float>;
template class MoeLayer<double>;

}  // namespace ml
