// The engine as the bindings see it: one model with its optimizer, whatever the element
// type, behind a type-erased interface. Tensors cross it as raw bytes of dtype().
// A model runs one job at a time; try_acquire/release guard that from the JS side.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../core/dtype.h"
#include "../core/shape.h"
#include "../dist/collective.h"
#include "../generate/session.h"
#include "../nn/config.h"
#include "step.h"

namespace ml {

struct ParamInfo {
  std::string name;
  Shape shape, file_shape;
  bool weight_decay;
};

// Which buffer of a parameter: its value, its gradient, or AdamW's first/second moment.
enum class Slot { Value, Grad, FirstMoment, SecondMoment };

class Runtime {
 public:
  virtual ~Runtime() = default;

  virtual DType dtype() const = 0;
  virtual int64_t vocab_size() const = 0;
  virtual std::vector<ParamInfo> params() = 0;
  // A whole tensor. With the optimizer sharded (join_ranks) a moment read is collective (with
  // expert parallel, any read of an expert tensor is): every rank reads the same tensors in the
  // same order, each getting the whole tensor from the ranks that hold its parts (gathered in
  // rank order). A write keeps the part this rank holds: its share of the moments, its block of
  // an expert tensor.
  virtual void read(const std::string& name, Slot slot, void* dst, size_t bytes) = 0;
  virtual void write(const std::string& name, Slot slot, const void* src, size_t bytes) = 0;

  // Inference-mode loss (routers as at inference), with the routing it used.
  virtual StepMetrics evaluate(const int32_t* tokens, int64_t batch, int64_t len_plus_one) = 0;
  // Zeroes gradients, then a training-mode forward and backward; gradients stay readable.
  virtual StepMetrics loss_and_gradients(const int32_t* tokens, int64_t batch, int64_t len_plus_one) = 0;
  // One optimizer step on the batch, split into `micro_batches` equal micro-batches whose
  // gradients accumulate (TrainStep::run).
  virtual StepMetrics train_step(const int32_t* tokens, int64_t batch, int64_t len_plus_one, double lr,
                                 const OptimizerConfig& opt, int64_t micro_batches) = 0;
  // Generation (generate/session.h); logits cross as dtype() values, vocab_size per row.
  // Prefills the prompts, writing each one's last logits (batch × vocab).
  virtual void generate_start(const GenerateRequest& request, void* last_logits) = 0;
  virtual GenerateChunk generate_next(int64_t max_steps, double max_ms) = 0;
  // Teacher forcing: one given token per sequence, the logits after it (batch × vocab).
  virtual void generate_feed(const int32_t* tokens, int64_t count, void* logits) = 0;
  // The parallel forward's logits at every position (batch × len × vocab).
  virtual void parallel_logits(const int32_t* tokens, int64_t batch, int64_t len, void* logits) = 0;
  virtual int64_t steps_done() const = 0;
  virtual void set_steps_done(int64_t steps) = 0;
  // Data parallel: later train steps sum with the other ranks through `ranks` (train/step.h);
  // shard_optimizer: each rank keeps and updates only its share of the optimizer (ZeRO-1);
  // expert_parallel: each rank runs and updates only its block of each MoE layer's experts, so
  // every forward (training or evaluation) is collective, reads of expert tensors (values,
  // gradients, moments) gather the blocks collectively, and generation is refused.
  virtual void join_ranks(std::shared_ptr<Collective> ranks, bool shard_optimizer, bool expert_parallel) = 0;
  // values[0, n) ← rank 0's, on every rank (the decisions rank 0 makes for a sharded run: when to
  // checkpoint, when to stop); unchanged before joining. Every rank calls it alike.
  virtual void from_rank_zero(double* values, int64_t n) = 0;
  // Bytes of AdamW moments this model holds now (0 before they are first needed).
  virtual int64_t optimizer_state_bytes() const = 0;
  // Bytes of the parameters' buffers this model holds now (0 before they are first needed), and
  // of each the part its experts take: under expert parallel this rank's block of them alone.
  virtual ParamMemory parameter_memory() const = 0;

  bool try_acquire() { return !busy_.exchange(true); }
  void release() { busy_ = false; }

 private:
  std::atomic<bool> busy_{false};
};

enum class Device { Cpu, Cuda };
// CUDA compute precision: bf16 activations and GEMMs (fp32 master weights, optimizer and
// residual stream), or fp32 throughout (parity checks).
enum class Precision { BF16, FP32 };

struct RuntimeOptions {
  Device device = Device::Cpu;
  Precision precision = Precision::BF16;
  bool deterministic = false;  // CUDA: no atomics in any reduction (bit-identical runs)
  bool cuda_graphs = true;     // CUDA: replay each step as a captured graph once shapes settle
};

// The CPU runtime computes in `dtype`; the CUDA one reads and writes fp32 (its master
// weights) and refuses float64.
std::unique_ptr<Runtime> make_runtime(const ModelConfig& config, DType dtype, const RuntimeOptions& options = {});

// train/cuda_runtime.cu; in a build without CUDA it throws, saying so.
std::unique_ptr<Runtime> make_cuda_runtime(const ModelConfig& config, const RuntimeOptions& options);

}  // namespace ml
