#include "step.h"

#include "../ops/adamw/adamw.h"
#include "../ops/grad_clip/grad_clip.h"

namespace ml {

template <typename T>
std::vector<ExpertCounts> expert_counts(const LanguageModel<T>& model) {
  std::vector<ExpertCounts> out;
  for (const cpu::Routing* r : model.routings()) out.push_back({r->counts, r->dropped});
  return out;
}

template <typename T>
TrainStep<T>::TrainStep(LanguageModel<T>& model) : model_(model) {
  auto& params = model.params();
  for (size_t i = 0; i < params.size(); ++i) {
    m_.push_back(Tensor<T>::zeros(params[i].value.shape()));
    v_.push_back(Tensor<T>::zeros(params[i].value.shape()));
  }
}

template <typename T>
StepMetrics TrainStep<T>::run(const int32_t* tokens, int64_t batch, int64_t len_plus_one, double lr,
                              const OptimizerConfig& opt) {
  auto& params = model_.params();
  model_.zero_grad();
  const double loss = model_.forward(tokens, batch, len_plus_one);
  model_.backward();

  std::vector<cpu::GradSpan<T>> grads;
  for (size_t i = 0; i < params.size(); ++i) grads.push_back({params[i].grad.data(), params[i].grad.numel()});
  const double norm = cpu::clip_grad_norm(grads, opt.grad_clip);

  ++steps_done_;
  for (size_t i = 0; i < params.size(); ++i) {
    Param<T>& p = params[i];
    const cpu::AdamWParams hp{lr, opt.beta1, opt.beta2, opt.eps, p.weight_decay ? opt.weight_decay : 0.0, steps_done_};
    cpu::adamw_update<T>(hp, p.value.data(), p.grad.data(), m_[i].data(), v_[i].data(), p.value.numel());
  }
  return {loss, model_.aux_loss(), norm, expert_counts(model_)};
}

template std::vector<ExpertCounts> expert_counts(const LanguageModel<float>&);
template std::vector<ExpertCounts> expert_counts(const LanguageModel<double>&);
template class TrainStep<float>;
template class TrainStep<double>;

}  // namespace ml
