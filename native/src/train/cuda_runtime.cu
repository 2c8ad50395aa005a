// The Runtime of a GPU model: the CPU model initialises the weights (both backends start from
// the same values), DeviceParams holds them on the device, and every call runs on the
// runtime's own stream. Out-of-memory errors come back naming the config and an estimate.
#include <cuda_runtime.h>

#include <type_traits>

#include "../core/cuda_check.h"
#include "../core/cuda_math.cuh"
#include "../core/gpu.h"
#include "../nn/cuda/lm.h"
#include "../ops/cast/cast.h"
#include "cuda_step.h"
#include "memory.h"
#include "runtime.h"

namespace ml {
namespace {

// The stream is created first and destroyed last: the model's buffers go back to the cache
// in host order, which is safe only while their work is on this stream.
class Stream {
 public:
  Stream() { ML_CUDA_CHECK("device cuda", cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking)); }
  ~Stream() {
    cudaStreamSynchronize(stream_);
    cudaStreamDestroy(stream_);
  }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return stream_; }

 private:
  cudaStream_t stream_ = nullptr;
};

cuda::Context make_context(cudaStream_t stream, const RuntimeOptions& options) {
  cuda::Context ctx;
  ctx.stream = stream;
  ctx.deterministic = options.deterministic;
  ctx.scan.deterministic = options.deterministic;
  return ctx;
}

template <typename T>
class CudaRuntime final : public Runtime {
 public:
  CudaRuntime(const ModelConfig& config, const RuntimeOptions& options, const ParamList<float>& initial)
      : ctx_(make_context(stream_.get(), options)), model_(config, initial, ctx_), step_(model_, options.cuda_graphs) {}

  DType dtype() const override { return DType::F32; }

  std::vector<ParamInfo> params() override {
    std::vector<ParamInfo> out;
    auto& ps = model_.params();
    for (size_t i = 0; i < ps.size(); ++i)
      out.push_back({ps.info(i).name, ps.info(i).shape, ps.info(i).file_shape, ps.info(i).weight_decay});
    return out;
  }

  void read(const std::string& name, Slot slot, void* dst, size_t bytes) override {
    const size_t i = checked(name, bytes);
    ML_CUDA_CHECK("read", cudaMemcpyAsync(dst, buffer(i, slot), bytes, cudaMemcpyDeviceToHost, stream_.get()));
    ML_CUDA_CHECK("read", cudaStreamSynchronize(stream_.get()));
  }

  void write(const std::string& name, Slot slot, const void* src, size_t bytes) override {
    const size_t i = checked(name, bytes);
    auto& ps = model_.params();
    ML_CUDA_CHECK("write", cudaMemcpyAsync(buffer(i, slot), src, bytes, cudaMemcpyHostToDevice, stream_.get()));
    if (slot == Slot::Value && ps.has_compute_copy())
      cuda::cast(ps.master(i), ps.compute(i), ps.info(i).numel, stream_.get());
    ML_CUDA_CHECK("write", cudaStreamSynchronize(stream_.get()));
  }

  StepMetrics evaluate(const int32_t* tokens, int64_t batch, int64_t len_plus_one) override {
    step_.forget_graph();
    return guarded(batch, len_plus_one, [&] {
      model_.forward(tokens, batch, len_plus_one, false);
      return step_.read_metrics(false);
    });
  }

  StepMetrics loss_and_gradients(const int32_t* tokens, int64_t batch, int64_t len_plus_one) override {
    step_.forget_graph();
    return guarded(batch, len_plus_one, [&] {
      model_.zero_grad();
      model_.forward(tokens, batch, len_plus_one, true);
      model_.backward();
      return step_.read_metrics(false);
    });
  }

  StepMetrics train_step(const int32_t* tokens, int64_t batch, int64_t len_plus_one, double lr,
                         const OptimizerConfig& opt) override {
    return guarded(batch, len_plus_one, [&] {
      StepMetrics m = step_.run(tokens, batch, len_plus_one, lr, opt);
      m.cuda_graph = step_.replayed();
      return m;
    });
  }

  int64_t steps_done() const override { return step_.steps_done(); }
  void set_steps_done(int64_t steps) override { step_.set_steps_done(steps); }

 private:
  size_t checked(const std::string& name, size_t bytes) {
    auto& ps = model_.params();
    const size_t i = ps.index(name);
    ML_CHECK(bytes == size_t(ps.info(i).numel) * sizeof(float), "parameter '", name, "': expected ", ps.info(i).numel,
             " float32 values of shape ", shape_str(ps.info(i).shape), ", got ", bytes / sizeof(float));
    return i;
  }

  float* buffer(size_t i, Slot slot) {
    auto& ps = model_.params();
    switch (slot) {
      case Slot::Value: return ps.master(i);
      case Slot::Grad: return ps.grad(i);
      case Slot::FirstMoment: return ps.first_moment(i);
      case Slot::SecondMoment: return ps.second_moment(i);
    }
    throw Error("unknown parameter slot");
  }

  // Out of memory: the weights were not updated (AdamW runs last and allocates nothing).
  template <typename F>
  StepMetrics guarded(int64_t batch, int64_t len_plus_one, F&& work) {
    try {
      return work();
    } catch (const cuda::OutOfDeviceMemory& e) {
      step_.forget_graph();
      cudaStreamSynchronize(stream_.get());
      cuda::device_release_cached();
      const ModelConfig& c = model_.config();
      const GpuMemory mem = gpu_memory();
      const MemoryEstimate need = estimate_training_memory(c, model_.params().total(), batch, len_plus_one - 1,
                                                           sizeof(T));
      throw Error(detail::concat("out of GPU memory: layers '", c.layers, "', d_model ", c.d_model, ", vocab ",
                                 c.padded_vocab, ", batch ", batch, " × ", len_plus_one - 1,
                                 " tokens needs about ", describe(need), "; the GPU has ", gib(double(mem.device_total)),
                                 " (", gib(double(mem.device_free)),
                                 " free now). Use a smaller batch or sequence length. [", e.what(), "]"));
    }
  }

  Stream stream_;
  cuda::Context ctx_;
  cuda::LanguageModel<T> model_;
  cuda::TrainStep<T> step_;
};

}  // namespace

std::unique_ptr<Runtime> make_cuda_runtime(const ModelConfig& config, const RuntimeOptions& options) {
  const GpuInfo gpu = query_gpu();
  ML_CHECK(gpu.device_count > 0, "device cuda: ", gpu.status);
  // The CPU model checks the config and draws the initial weights; only its values are kept.
  LanguageModel<float> initial(config);
  try {
    if (options.precision == Precision::FP32)
      return std::make_unique<CudaRuntime<float>>(config, options, initial.params());
    return std::make_unique<CudaRuntime<cuda::bf16>>(config, options, initial.params());
  } catch (const cuda::OutOfDeviceMemory& e) {
    int64_t count = 0;
    for (size_t i = 0; i < initial.params().size(); ++i) count += initial.params()[i].value.numel();
    throw Error(detail::concat("out of GPU memory: layers '", config.layers, "', d_model ", config.d_model, ": ", count,
                               " parameters need about ",
                               gib(weight_bytes(count, options.precision == Precision::FP32 ? 4 : 2)),
                               " for weights, gradients and AdamW state alone. [", e.what(), "]"));
  }
}

}  // namespace ml
