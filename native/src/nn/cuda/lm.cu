#include "lm.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <sstream>
#include <type_traits>

#include "../../core/cuda_check.h"
#include "../../core/cuda_math.cuh"
#include "../../ops/cast/cast.h"
#include "../../ops/cross_entropy/cross_entropy.h"
#include "../../ops/embedding/embedding.h"
#include "../../ops/rmsnorm/rmsnorm.h"
#include "mamba.h"
#include "mlp.h"
#include "moe.h"
#include "parallel.h"

namespace ml::cuda {
namespace {

// An fp32 gradient of the residual stream as the T gradient the layers take: itself in fp32,
// a rounded copy in `scratch` in bf16.
template <typename T>
const T* as_compute(const float* g, DeviceBuffer<T>& scratch, int64_t n, cudaStream_t stream) {
  if constexpr (std::is_same_v<T, float>) {
    return g;
  } else {
    cast(g, scratch.get(), n, stream);
    return scratch.get();
  }
}

// The LM head's vocabulary chunk: ~128M fp32 logits (512 MiB) a chunk, so a 64 × 1024 batch
// over GPT-2's vocabulary takes 25 chunks rather than the op's default ~100 (fewer, larger
// GEMMs and launches).
HeadDims head_dims(int64_t rows, int64_t dim, int64_t vocab) {
  const int64_t cols = std::max<int64_t>(256, (int64_t{1} << 27) / std::max<int64_t>(rows, 1)) / 8 * 8;
  return {rows, dim, vocab, std::min(cols, vocab)};
}

}  // namespace

template <typename T>
LanguageModel<T>::LanguageModel(const ModelConfig& c, const ParamList<float>& initial, const Context& context)
    : cfg_(c),
      ctx_(context),
      params_(initial, context.stream),
      embedding_(params_.index("backbone.embedding.weight")),
      norm_f_(params_.index("backbone.norm_f.weight")) {
  std::vector<std::string> specs;
  std::istringstream words(c.layers);
  for (std::string w; words >> w;) specs.push_back(w);
  for (size_t i = 0; i < specs.size(); ++i) {
    const std::string prefix = "backbone.layers." + std::to_string(i) + ".";
    norms_.push_back(params_.index(prefix + "norm.weight"));
    const std::string& spec = specs[i];
    if (spec.size() == 1) {
      layers_.push_back(make_layer(spec[0], prefix, int64_t(i)));
      continue;
    }
    // The CPU model has already checked the group's grammar ("K|K|...").
    std::vector<std::unique_ptr<Layer<T>>> branches;
    for (size_t j = 0; j < spec.size(); j += 2) branches.push_back(make_layer(spec[j], prefix, int64_t(i)));
    layers_.push_back(make_parallel_layer<T>(c.d_model, std::move(branches), ctx_));
  }
}

template <typename T>
std::unique_ptr<Layer<T>> LanguageModel<T>::make_layer(char kind, const std::string& prefix, int64_t index) {
  switch (kind) {
    case 'M':
      return std::make_unique<MambaMixer<T>>(cfg_.mamba, params_, prefix + "mixer.", ctx_);
    case 'E':
      return make_moe_layer<T>(cfg_.d_model, cfg_.moe, params_, prefix + "moe.", ctx_);
    case 'F':
      return make_mlp_layer<T>(cfg_.d_model, cfg_.mlp, params_, prefix + "mlp.", ctx_);
    default:
      throw Error(detail::concat("model config: layer ", index, " has unknown kind '", kind, "'"));
  }
}

template <typename T>
void LanguageModel<T>::upload(const int32_t* tokens, int64_t batch, int64_t len_plus_one) {
  ML_CHECK(batch > 0, "forward: batch size must be positive, got ", batch);
  ML_CHECK(len_plus_one >= 2, "forward: each sequence needs at least 2 tokens (input and target), got ", len_plus_one);
  const int64_t len = len_plus_one - 1, rows = batch * len, d = cfg_.d_model, n = int64_t(layers_.size());
  cpu::check_token_ids(tokens, batch * len_plus_one, cfg_.vocab_size);
  const cudaStream_t s = ctx_.stream;
  if (batch != batch_ || len != len_) {
    batch_ = batch, len_ = len;
    ++generation_;
    ids_host_.resize(2 * rows);
    ids_ = DeviceBuffer<int32_t>(2 * rows, "token ids");
    residual_.clear(), rstd_.clear(), normed_.clear();
    for (int64_t i = 0; i <= n; ++i) {
      residual_.emplace_back(rows * d, "residual stream");
      rstd_.emplace_back(rows, "norm statistics");
      normed_.emplace_back(rows * d, "normed activations");
    }
    mixed_ = DeviceBuffer<T>(rows * d, "layer outputs");
    lse_ = DeviceBuffer<float>(rows, "log-sum-exp");
    loss_ = DeviceBuffer<float>(1, "loss");
  }
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t t = 0; t < len; ++t) {
      ids_host_[b * len + t] = tokens[b * len_plus_one + t];
      ids_host_[rows + b * len + t] = tokens[b * len_plus_one + t + 1];
    }
  // Pageable memory: the copy completes before this returns, so ids_host_ may change after.
  ML_CUDA_CHECK("forward", cudaMemcpyAsync(ids_.get(), ids_host_.data(), ids_.bytes(), cudaMemcpyHostToDevice, s));
}

template <typename T>
void LanguageModel<T>::forward_uploaded(bool training) {
  ML_CHECK(batch_ > 0, "forward: upload a batch first");
  const int64_t rows = batch_ * len_, d = cfg_.d_model, n = int64_t(layers_.size());
  const cudaStream_t s = ctx_.stream;
  for (auto& layer : layers_) layer->set_training(training);
  const int32_t *inputs = ids_.get(), *targets = ids_.get() + rows;

  // r_0 = embed(tokens) goes through norm 0 as its x (no residual yet).
  embedding_forward<T>(inputs, params_.compute(embedding_), mixed_.get(), rows, d, s);
  for (int64_t i = 0; i <= n; ++i) {
    const float* prev = i == 0 ? nullptr : residual_[i - 1].get();
    const float* weight = params_.master(i < n ? norms_[i] : norm_f_);
    rmsnorm_forward<T>(mixed_.get(), prev, weight, residual_[i].get(), normed_[i].get(), rstd_[i].get(), rows, d,
                       float(cfg_.norm_eps), s);
    if (i < n) layers_[i]->forward(normed_[i].get(), mixed_.get(), batch_, len_);
  }
  cross_entropy_forward<T>(head_dims(rows, d, cfg_.padded_vocab), normed_[n].get(), params_.compute(embedding_), targets,
                           lse_.get(), loss_.get(), s);
  trained_forward_ = training;
}

template <typename T>
void LanguageModel<T>::backward() {
  ML_CHECK(batch_ > 0 && trained_forward_, "backward: call forward (training) first");
  const int64_t rows = batch_ * len_, d = cfg_.d_model, n = int64_t(layers_.size());
  const cudaStream_t s = ctx_.stream;
  const int32_t *inputs = ids_.get(), *targets = ids_.get() + rows;
  DeviceBuffer<float> dres(rows * d, "residual gradient"), dres_prev(rows * d, "residual gradient");
  DeviceBuffer<T> dnormed(rows * d, "normed gradient"), dres_compute;
  if constexpr (!std::is_same_v<T, float>) dres_compute = DeviceBuffer<T>(rows * d, "residual gradient (bf16)");

  // d(loss)/d(normed_f) in fp32, then through norm_f into the residual stream.
  float* dhead = dres_prev.get();
  cross_entropy_backward<T>(head_dims(rows, d, cfg_.padded_vocab), normed_[n].get(), params_.compute(embedding_), targets,
                            lse_.get(), 1.f, dhead, params_.grad(embedding_), s);
  rmsnorm_backward<T>(residual_[n].get(), rstd_[n].get(), params_.master(norm_f_),
                      as_compute<T>(dhead, dres_compute, rows * d, s), nullptr, dres.get(), params_.grad(norm_f_), rows,
                      d, s);
  for (int64_t i = n - 1; i >= 0; --i) {
    // dres is d(loss)/d(r_{i+1}); r_{i+1} = r_i + layer_i(n_i) passes it to both terms.
    layers_[i]->backward(as_compute<T>(dres.get(), dres_compute, rows * d, s), dnormed.get());
    rmsnorm_backward<T>(residual_[i].get(), rstd_[i].get(), params_.master(norms_[i]), dnormed.get(), dres.get(),
                        dres_prev.get(), params_.grad(norms_[i]), rows, d, s);
    std::swap(dres, dres_prev);
  }
  embedding_backward<T>(inputs, as_compute<T>(dres.get(), dres_compute, rows * d, s), params_.grad(embedding_), rows,
                        d, cfg_.padded_vocab, s);
}

template <typename T>
bool LanguageModel<T>::capturable() const {
  for (const auto& layer : layers_)
    if (!layer->capturable()) return false;
  return true;
}

template <typename T>
void LanguageModel<T>::zero_grad() {
  ML_CUDA_CHECK("zero_grad", cudaMemsetAsync(params_.grads(), 0, size_t(params_.total()) * sizeof(float), ctx_.stream));
}

template <typename T>
std::vector<DeviceExpertStats> LanguageModel<T>::expert_stats() const {
  std::vector<DeviceExpertStats> out;
  for (const auto& layer : layers_) layer->expert_stats(out);
  return out;
}

template class LanguageModel<float>;
template class LanguageModel<bf16>;

}  // namespace ml::cuda
