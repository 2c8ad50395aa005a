#include "cuda_step.h"

#include <cuda_runtime.h>

#include <type_traits>

#include "../core/cuda_check.h"
#include "../core/cuda_math.cuh"
#include "../ops/adamw/adamw.h"
#include "../ops/grad_clip/grad_clip.h"

namespace ml::cuda {

template <typename T>
TrainStep<T>::TrainStep(LanguageModel<T>& model, bool use_graphs)
    : model_(model), use_graphs_(use_graphs), norm_and_coef_(2, "gradient norm") {}

template <typename T>
void TrainStep<T>::gradients(double grad_clip) {
  DeviceParams<T>& params = model_.params();
  model_.zero_grad();
  model_.forward_uploaded(true);
  model_.backward();
  // One span covers every gradient: the padding between tensors stays zero.
  clip_coefficient({{params.grads(), params.total()}}, grad_clip, norm_and_coef_.get(), norm_and_coef_.get() + 1,
                   model_.stream());
}

template <typename T>
StepMetrics TrainStep<T>::run(const int32_t* tokens, int64_t batch, int64_t len_plus_one, double lr,
                              const OptimizerConfig& opt) {
  DeviceParams<T>& params = model_.params();
  const cudaStream_t s = model_.stream();
  model_.upload(tokens, batch, len_plus_one);
  const int64_t generation = model_.buffers_generation();
  replayed_ = graph_ && graph_generation_ == generation && graph_clip_ == opt.grad_clip;
  if (!replayed_ && use_graphs_ && !capture_refused_ && warm_generation_ == generation &&
      warm_clip_ == opt.grad_clip && model_.capturable()) {
    graph_ = CudaGraph::capture(s, [&] { gradients(opt.grad_clip); });
    graph_generation_ = generation, graph_clip_ = opt.grad_clip;
    replayed_ = bool(graph_);
    capture_refused_ = !graph_;  // the same work would be refused again: stay eager
  }
  if (replayed_) {
    graph_.launch(s);
  } else {
    gradients(opt.grad_clip);
    warm_generation_ = generation, warm_clip_ = opt.grad_clip;
  }

  ++steps_done_;
  std::vector<AdamWTensor> tensors;
  for (size_t i = 0; i < params.size(); ++i) {
    AdamWTensor t{params.master(i), params.grad(i), params.first_moment(i), params.second_moment(i),
                  params.info(i).numel, float(params.info(i).weight_decay ? opt.weight_decay : 0.0)};
    if constexpr (!std::is_same_v<T, float>) t.param_bf16 = params.compute(i);
    tensors.push_back(t);
  }
  adamw_update({lr, opt.beta1, opt.beta2, opt.eps, opt.weight_decay, steps_done_}, tensors, norm_and_coef_.get() + 1, s);
  return read_metrics(true);
}

template <typename T>
StepMetrics TrainStep<T>::read_metrics(bool with_grad_norm) {
  const cudaStream_t s = model_.stream();
  // Copies into pageable memory return once done: the first waits for the whole step.
  auto read = [s](void* dst, const void* src, size_t bytes) {
    ML_CUDA_CHECK("step metrics", cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, s));
  };
  float loss = 0, norm = 0;
  read(&loss, model_.loss(), sizeof(float));
  if (with_grad_norm) read(&norm, norm_and_coef_.get(), sizeof(float));
  StepMetrics m{loss, 0.0, norm, {}};
  for (const DeviceExpertStats& st : model_.expert_stats()) {
    ExpertCounts counts{std::vector<int64_t>(st.experts), 0};
    read(counts.counts.data(), st.counts, st.experts * sizeof(int64_t));
    read(&counts.dropped, st.dropped, sizeof(int64_t));
    if (st.aux_loss) {
      double aux = 0;
      read(&aux, st.aux_loss, sizeof(double));
      m.aux_loss += aux;
    }
    m.experts.push_back(std::move(counts));
  }
  ML_CUDA_CHECK("step metrics", cudaStreamSynchronize(s));
  return m;
}

template class TrainStep<float>;
template class TrainStep<bf16>;

}  // namespace ml::cuda
