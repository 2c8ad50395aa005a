// The CUDA backend: every op's kernel (ops/<op>/cuda.cu) enqueued on the backend's own stream,
// with no host synchronisation except where a method says so. Activations and the compute copy
// of the weights are T (float or __nv_bfloat16); master weights, gradients, moments, the
// residual stream and statistics are fp32, as DESIGN.md's numerics say.
#pragma once
#include <functional>
#include <string>
#include <type_traits>
#include <vector>

#include "../core/cuda_fwd.h"
#include "../core/cuda_graph.h"
#include "../core/device_allocator.h"
#include "../ops/a_log/a_log.h"
#include "../ops/argmax/argmax.h"
#include "../ops/add/add.h"
#include "../ops/adamw/adamw.h"
#include "../ops/attention/attention.h"
#include "../ops/attention_decode/attention_decode.h"
#include "../ops/cast/cast.h"
#include "../ops/conv1d/conv1d.h"
#include "../ops/conv1d_step/conv1d_step.h"
#include "../ops/cross_entropy/cross_entropy.h"
#include "../ops/embedding/embedding.h"
#include "../ops/expert_decode/expert_decode.h"
#include "../ops/geglu/geglu.h"
#include "../ops/gelu/gelu.h"
#include "../ops/gemm/gemm.h"
#include "../ops/grad_clip/grad_clip.h"
#include "../ops/linear/linear.h"
#include "../ops/mamba_input_step/mamba_input_step.h"
#include "../ops/moe_dispatch/moe_dispatch.h"
#include "../ops/param_init/param_init.h"
#include "../ops/layernorm/layernorm.h"
#include "../ops/rmsnorm/rmsnorm.h"
#include "../ops/rope/rope.h"
#include "../ops/router/router.h"
#include "../ops/selective_scan/selective_scan.h"
#include "../ops/selective_scan_step/selective_scan_step.h"
#include "../ops/swiglu/swiglu.h"
#include "backend.h"

namespace ml {

template <typename T>
class CudaBackend {
 public:
  using Act = T;
  using Real = float;
  using Stat = float;
  template <typename U>
  using Buffer = cuda::DeviceBuffer<U>;
  // Dropless experts run one GEMM chain each; rounding their rows to 64 bounds the shapes
  // cuBLASLt plans for and keeps rows aligned.
  static constexpr int64_t kSegmentRows = 64;
  static constexpr bool kGraphs = true;
  using Graph = cuda::CudaGraph;

  // Creates the stream every call is enqueued on. deterministic: no atomics in any reduction.
  explicit CudaBackend(bool deterministic);
  ~CudaBackend();  // waits for the stream, then destroys it
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  cudaStream_t stream() const { return stream_; }

  // Memory. A copy to the host is complete after sync(), which waits for everything enqueued.
  void zero(void* p, size_t bytes) const;
  void copy_to_host(void* dst, const void* src, size_t bytes) const;
  void from_host(void* dst, const void* src, size_t bytes) const;
  void copy(void* dst, const void* src, size_t bytes) const;  // device to device
  void sync() const;

  // Records the work `work` enqueues without running it (an empty graph when CUDA cannot
  // capture it); launch replays it.
  Graph capture(const std::function<void()>& work) const { return Graph::capture(stream_, work); }
  void launch(const Graph& graph) const { graph.launch(stream_); }

  // Parameters: the master weights are drawn on the device.
  // out[0, n) ← the parameter's values [first, first + n).
  void param_init(const ParamInit& init, uint64_t seed, const std::string& name, float* out, int64_t n,
                  int64_t first = 0) const {
    cuda::param_init(init, seed, name, out, n, stream_, first);
  }
  // The compute type's copy of fp32 values: the values themselves when T is fp32.
  const T* as_act(const float* x, Buffer<T>& scratch, int64_t n) const {
    if constexpr (std::is_same_v<T, float>) {
      return x;
    } else {
      if (scratch.size() < n) scratch = Buffer<T>(n, "compute copy");
      cuda::cast(x, scratch.get(), n, stream_);
      return scratch.get();
    }
  }
  void to_act(const float* x, T* y, int64_t n) const { cuda::cast(x, y, n, stream_); }
  void check_mamba_shape(int64_t d_conv, int64_t d_state) const;

  // Linear layers and feed-forward blocks.
  void linear_forward(const T* x, const T* w, const float* bias, T* y, int64_t rows, int64_t in, int64_t out) const {
    cuda::linear_forward<T>(x, w, bias, y, rows, in, out, stream_);
  }
  void linear_backward(const T* x, const T* w, const T* dy, T* dx, float* dw, float* db, int64_t rows, int64_t in,
                       int64_t out, bool accumulate_dx) const {
    cuda::linear_backward<T>(x, w, dy, dx, dw, db, rows, in, out, accumulate_dx, stream_);
  }
  template <typename Out>
  void gemm_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const T* A, int64_t lda,
                    int64_t stride_a, const T* B, int64_t ldb, int64_t stride_b, float beta, Out* C, int64_t ldc,
                    int64_t stride_c, int64_t batch, bool b_is_weight = false) const {
    cuda::gemm_strided_batched<T, Out>(trans_a, trans_b, M, N, K, alpha, A, lda, stride_a, B, ldb, stride_b, beta, C,
                                       ldc, stride_c, batch, stream_, b_is_weight);
  }
  void gelu_forward(const T* x, T* y, int64_t n) const { cuda::gelu_forward<T>(x, y, n, stream_); }
  void gelu_backward(const T* x, const T* dy, T* dx, int64_t n) const { cuda::gelu_backward<T>(x, dy, dx, n, stream_); }
  void swiglu_forward(const T* gate, const T* up, T* y, int64_t n) const {
    cuda::swiglu_forward<T>(gate, up, y, n, stream_);
  }
  void swiglu_backward(const T* gate, const T* up, const T* dy, T* dgate, T* dup, int64_t n) const {
    cuda::swiglu_backward<T>(gate, up, dy, dgate, dup, n, stream_);
  }
  void geglu_forward(const T* gate, const T* up, T* y, int64_t n) const {
    cuda::geglu_forward<T>(gate, up, y, n, stream_);
  }
  void geglu_backward(const T* gate, const T* up, const T* dy, T* dgate, T* dup, int64_t n) const {
    cuda::geglu_backward<T>(gate, up, dy, dgate, dup, n, stream_);
  }
  void add_into(const T* x, T* y, int64_t n) const { cuda::add_into<T>(x, y, n, stream_); }
  // The same on fp32 values (gradients): one fp32 add each, as the host's.
  void add_real_into(const float* x, float* y, int64_t n) const { cuda::add_into<float>(x, y, n, stream_); }

  // The Mamba mixer.
  void conv1d_forward(const cpu::Conv1dDims& d, const T* x, const float* w, const float* b, T* y, bool silu) const {
    cuda::conv1d_forward<T>(d, x, w, b, y, silu, stream_);
  }
  void conv1d_backward(const cpu::Conv1dDims& d, const T* x, const float* w, const float* b, const T* dy, T* dx,
                       float* dw, float* db, bool silu) const {
    cuda::conv1d_backward<T>(d, x, w, b, dy, dx, dw, db, silu, stream_);
  }
  void a_log_forward(const float* a_log, float* A, int64_t n) const { cuda::a_log_forward(a_log, A, n, stream_); }
  void a_log_backward(const float* A, const float* dA, float* da_log, int64_t n) const {
    cuda::a_log_backward(A, dA, da_log, n, stream_);
  }
  // The forward saves fp32 states every scan_options().checkpoint_every steps for the backward.
  int64_t scan_checkpoint_elements(const ScanDims& d) const { return cuda::scan_checkpoint_elements(d, scan_); }
  void scan_forward(const ScanDims& d, const ScanInputs<T, float>& in, T* out, float* checkpoints,
                    float* final_state = nullptr) const {
    cuda::selective_scan_forward<T>(d, in, out, checkpoints, scan_, stream_, final_state);
  }
  void scan_backward(const ScanDims& d, const ScanInputs<T, float>& in, const T* dout, const float* checkpoints,
                     const ScanGrads<T, float>& g) const {
    cuda::selective_scan_backward<T>(d, in, dout, checkpoints, g, scan_, stream_);
  }

  // The Mamba mixer's recurrent step (generation).
  void conv1d_step(const cpu::Conv1dStepDims& d, T* window, const T* x, const float* w, const float* b, T* y,
                   bool silu) const {
    cuda::conv1d_step<T>(d, window, x, w, b, y, silu, stream_);
  }
  // The pre-norm, in_proj and conv step in one kernel (ops/mamba_input_step), where it fits.
  bool fuses_mamba_input_step(const cpu::MambaInputStepDims& d) const {
    return cuda::mamba_input_step_fits(d, int64_t(sizeof(T)));
  }
  void mamba_input_step(const cpu::MambaInputStepDims& d, const T* x, const float* residual, const float* norm_weight,
                        float* residual_out, const T* in_proj, T* window, const float* conv_w, const float* conv_b,
                        T* xc, T* z) const {
    cuda::mamba_input_step<T>(d, x, residual, norm_weight, residual_out, in_proj, window, conv_w, conv_b, xc, z,
                              stream_);
  }
  void scan_step(const cpu::ScanStepDims& d, const ScanInputs<T, float>& in, float* h, T* out) const {
    cuda::selective_scan_step<T>(d, in, h, out, stream_);
  }
  void scan_step(const cpu::ScanStepDims& d, const ScanInputs<T, float>& in, const cpu::StepProjection<T>& projection,
                 float* h, T* out) const {
    cuda::selective_scan_step<T>(d, in, projection, h, out, stream_);
  }

  // Attention.
  void check_attention_shape(int64_t head_dim) const;
  void rope_forward(const cpu::RopeDims& d, double base, const T* x, T* y) const {
    cuda::rope_forward<T>(d, base, x, y, stream_);
  }
  void rope_backward(const cpu::RopeDims& d, double base, const T* dy, T* dx) const {
    cuda::rope_backward<T>(d, base, dy, dx, stream_);
  }
  void attention_forward(const cpu::AttentionDims& d, const T* q, const T* k, const T* v, T* out, float* lse) const {
    cuda::attention_forward<T>(d, q, k, v, out, lse, stream_);
  }
  void attention_backward(const cpu::AttentionDims& d, const T* q, const T* k, const T* v, const T* out,
                          const float* lse, const T* dout, T* dq, T* dk, T* dv) const {
    cuda::attention_backward<T>(d, q, k, v, out, lse, dout, dq, dk, dv, stream_);
  }
  int64_t attention_decode_scratch(const cpu::AttentionDecodeDims& d) const { return cuda::attention_decode_scratch(d); }
  void attention_decode(const cpu::AttentionDecodeDims& d, const T* q, const T* k, const T* v, T* k_cache, T* v_cache,
                        const int32_t* positions, T* out, float* scratch) const {
    cuda::attention_decode<T>(d, q, k, v, k_cache, v_cache, positions, out, scratch, stream_);
  }

  // Mixture of experts.
  void route_forward(const RouterOptions& o, const T* logits, int64_t tokens, int64_t experts, T* probs, T* gates,
                     Routing& r) const {
    cuda::route_forward<T>(o, logits, tokens, experts, probs, gates, r, stream_);
  }
  void route_backward(const RouterOptions& o, const T* probs, const Routing& r, const T* dgates, T* dlogits) const {
    cuda::route_backward<T>(o, probs, r, dgates, dlogits, stream_);
  }
  void route_choices(const RouterOptions& o, const T* logits, int64_t tokens, int64_t experts, T* probs, T* gates,
                     int32_t* expert) const {
    cuda::route_choices<T>(o, logits, tokens, experts, probs, gates, expert, stream_);
  }
  void segment_offsets(const int64_t* counts, int64_t experts, int64_t segment, int64_t* offsets) const {
    cuda::segment_offsets(counts, experts, segment, offsets, stream_);
  }
  void place(const int32_t* expert, const uint8_t* kept, const int32_t* rank, const int64_t* offsets, int64_t capacity,
             int64_t assignments, int64_t slots, int32_t* slot, int32_t* source) const {
    cuda::place(expert, kept, rank, offsets, capacity, assignments, slots, slot, source, stream_);
  }
  void gather(const T* src, const T* scale, const int32_t* source, int64_t slots, int64_t tokens, int64_t d,
              T* dst) const {
    cuda::gather<T>(src, scale, source, slots, tokens, d, dst, stream_);
  }
  void combine(const T* src, const T* scale, const int32_t* slot, int64_t tokens, int64_t top_k, int64_t d,
               T* dst) const {
    cuda::combine<T>(src, scale, slot, tokens, top_k, d, dst, stream_);
  }
  void gate_grad(const T* dy, const T* out, const int32_t* slot, int64_t tokens, int64_t assignments, int64_t d,
                 T* dgates) const {
    cuda::gate_grad<T>(dy, out, slot, tokens, assignments, d, dgates, stream_);
  }
  void expert_decode(const cpu::ExpertDecodeDims& d, const T* x, const int32_t* expert, const T* gate, const T* fc1,
                     const T* fc2, T* hidden, T* y) const {
    cuda::expert_decode<T>(d, x, expert, gate, fc1, fc2, hidden, y, stream_);
  }

  // The language model's ends.
  void argmax(const Real* x, int64_t rows, int64_t n, int64_t ld, int32_t* out) const {
    cuda::argmax<Real>(x, rows, n, ld, out, stream_);
  }
  void embedding_forward(const int32_t* ids, const T* w, T* out, int64_t tokens, int64_t dim) const {
    cuda::embedding_forward<T>(ids, w, out, tokens, dim, stream_);
  }
  void embedding_backward(const int32_t* ids, const T* dout, float* dw, int64_t tokens, int64_t dim,
                          int64_t vocab) const {
    cuda::embedding_backward<T>(ids, dout, dw, tokens, dim, vocab, stream_);
  }
  void rmsnorm_forward(const T* x, const float* residual, const float* w, float* residual_out, T* y, float* rstd,
                       int64_t rows, int64_t dim, double eps) const {
    cuda::rmsnorm_forward<T>(x, residual, w, residual_out, y, rstd, rows, dim, float(eps), stream_);
  }
  void rmsnorm_backward(const float* residual_out, const float* rstd, const float* w, const T* dy,
                        const float* dresidual_out, float* dx, float* dw, int64_t rows, int64_t dim) const {
    cuda::rmsnorm_backward<T>(residual_out, rstd, w, dy, dresidual_out, dx, dw, rows, dim, stream_);
  }
  void layernorm_forward(const T* x, const float* residual, const float* w, const float* bias, float* residual_out,
                         T* y, float* mean, float* rstd, int64_t rows, int64_t dim, double eps) const {
    cuda::layernorm_forward<T>(x, residual, w, bias, residual_out, y, mean, rstd, rows, dim, float(eps), stream_);
  }
  void layernorm_backward(const float* residual_out, const float* mean, const float* rstd, const float* w,
                          const T* dy, const float* dresidual_out, float* dx, float* dw, float* dbias, int64_t rows,
                          int64_t dim) const {
    cuda::layernorm_backward<T>(residual_out, mean, rstd, w, dy, dresidual_out, dx, dw, dbias, rows, dim, stream_);
  }
  // The head's logits are made ~128M (512 MiB of fp32) at a time: a 64 × 1024 batch over GPT-2's
  // vocabulary takes 25 chunks rather than the op's default ~100 (fewer, larger GEMMs).
  void cross_entropy_forward(const cpu::HeadDims& d, const T* h, const T* embedding, const int32_t* targets,
                             float* lse, float* loss) const {
    cuda::cross_entropy_forward<T>(chunked(d), h, embedding, targets, lse, loss, stream_);
  }
  void cross_entropy_forward_backward(const cpu::HeadDims& d, const T* h, const T* embedding, const int32_t* targets,
                                      float* lse, float* loss, double dloss, float* dh, float* dembedding) const {
    cuda::cross_entropy_forward_backward<T>(chunked(d), h, embedding, targets, lse, loss, float(dloss), dh, dembedding,
                                            stream_);
  }

  // The optimizer, with no host synchronisation (ops/grad_clip's clip_coefficient): norm_coef[0]
  // = the gradient norm, [1] = the coefficient adamw applies, NaN when the step must be skipped.
  void clip_coefficient(const std::vector<cpu::GradSpan<float>>& grads, double max_norm, double scale,
                        const float* loss, float* norm_coef, double elsewhere = 0) const {
    cuda::clip_coefficient(grads, max_norm, scale, loss, norm_coef, norm_coef + 1, stream_, elsewhere);
  }
  // out[0] (device memory) = Σ g² over the spans (ops/grad_clip).
  void sum_squares(const std::vector<cpu::GradSpan<float>>& grads, double* out) const {
    cuda::sum_squares(grads, out, stream_);
  }
  void adamw(const cpu::AdamWParams& hp, const std::vector<OptimizerTensor<float, T>>& tensors,
             const float* norm_coef) const;

 private:
  static cpu::HeadDims chunked(cpu::HeadDims d);

  cudaStream_t stream_ = nullptr;
  cuda::ScanOptions scan_;
};

}  // namespace ml
