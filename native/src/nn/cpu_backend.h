// The CPU backend: every op's multi-threaded reference (ops/<op>/cpu.cpp) in T, float or
// double; master weights and activations are the same T, so there is no compute copy.
#pragma once
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "../core/host_buffer.h"
#include "../ops/a_log/a_log.h"
#include "../ops/argmax/argmax.h"
#include "../ops/add/add.h"
#include "../ops/adamw/adamw.h"
#include "../ops/attention/attention.h"
#include "../ops/attention_decode/attention_decode.h"
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
class CpuBackend {
 public:
  using Act = T;
  using Real = T;
  using Stat = double;
  template <typename U>
  using Buffer = HostBuffer<U>;
  static constexpr int64_t kSegmentRows = 1;
  static constexpr bool kGraphs = false;
  struct Graph {};  // steps run as they are

  // Memory: host to host, done when the call returns.
  void zero(void* p, size_t bytes) const {
    if (bytes) std::memset(p, 0, bytes);
  }
  void copy_to_host(void* dst, const void* src, size_t bytes) const {
    if (bytes) std::memcpy(dst, src, bytes);
  }
  void from_host(void* dst, const void* src, size_t bytes) const { copy_to_host(dst, src, bytes); }
  void copy(void* dst, const void* src, size_t bytes) const { copy_to_host(dst, src, bytes); }
  void sync() const {}

  // Parameters.
  // out[0, n) ← the parameter's values [first, first + n).
  void param_init(const ParamInit& init, uint64_t seed, const std::string& name, T* out, int64_t n,
                  int64_t first = 0) const {
    cpu::param_init<T>(init, seed, name, out, n, first);
  }
  // Act and Real are one type: the layers read the master weights.
  const T* as_act(const T* x, Buffer<T>&, int64_t) const { return x; }
  void check_mamba_shape(int64_t, int64_t) const {}

  // Linear layers and feed-forward blocks.
  void linear_forward(const T* x, const T* w, const T* bias, T* y, int64_t rows, int64_t in, int64_t out) const {
    cpu::linear_forward<T>(x, w, bias, y, rows, in, out);
  }
  void linear_backward(const T* x, const T* w, const T* dy, T* dx, T* dw, T* db, int64_t rows, int64_t in,
                       int64_t out, bool accumulate_dx) const {
    cpu::linear_backward<T>(x, w, dy, dx, dw, db, rows, in, out, accumulate_dx);
  }
  // `batch` products of one shape, operand i at X + i·stride_x (the experts of a MoE). Whether B
  // is weights matters only to the CUDA backend's scheduling.
  void gemm_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const T* A, int64_t lda,
                    int64_t stride_a, const T* B, int64_t ldb, int64_t stride_b, float beta, T* C, int64_t ldc,
                    int64_t stride_c, int64_t batch, bool /*b_is_weight*/ = false) const {
    for (int64_t i = 0; i < batch; ++i)
      cpu::gemm<T>(trans_a, trans_b, M, N, K, T(alpha), A + i * stride_a, lda, B + i * stride_b, ldb, T(beta),
                   C + i * stride_c, ldc);
  }
  void gelu_forward(const T* x, T* y, int64_t n) const { cpu::gelu_forward<T>(x, y, n); }
  void gelu_backward(const T* x, const T* dy, T* dx, int64_t n) const { cpu::gelu_backward<T>(x, dy, dx, n); }
  void swiglu_forward(const T* gate, const T* up, T* y, int64_t n) const { cpu::swiglu_forward<T>(gate, up, y, n); }
  void swiglu_backward(const T* gate, const T* up, const T* dy, T* dgate, T* dup, int64_t n) const {
    cpu::swiglu_backward<T>(gate, up, dy, dgate, dup, n);
  }
  void geglu_forward(const T* gate, const T* up, T* y, int64_t n) const { cpu::geglu_forward<T>(gate, up, y, n); }
  void geglu_backward(const T* gate, const T* up, const T* dy, T* dgate, T* dup, int64_t n) const {
    cpu::geglu_backward<T>(gate, up, dy, dgate, dup, n);
  }
  void add_into(const T* x, T* y, int64_t n) const { cpu::add_into<T>(x, y, n); }
  // The same on Real values (gradients), which are T here.
  void add_real_into(const T* x, T* y, int64_t n) const { cpu::add_into<T>(x, y, n); }

  // The Mamba mixer.
  void conv1d_forward(const cpu::Conv1dDims& d, const T* x, const T* w, const T* b, T* y, bool silu) const {
    cpu::conv1d_forward<T>(d, x, w, b, y, silu);
  }
  void conv1d_backward(const cpu::Conv1dDims& d, const T* x, const T* w, const T* b, const T* dy, T* dx, T* dw, T* db,
                       bool silu) const {
    cpu::conv1d_backward<T>(d, x, w, b, dy, dx, dw, db, silu);
  }
  void a_log_forward(const T* a_log, T* A, int64_t n) const { cpu::a_log_forward<T>(a_log, A, n); }
  void a_log_backward(const T* A, const T* dA, T* da_log, int64_t n) const { cpu::a_log_backward<T>(A, dA, da_log, n); }
  // The CPU scan recomputes its states from the inputs: no checkpoints.
  int64_t scan_checkpoint_elements(const ScanDims&) const { return 0; }
  void scan_forward(const ScanDims& d, const ScanInputs<T>& in, T* out, T*, T* final_state = nullptr) const {
    cpu::selective_scan_forward<T>(d, in, out, final_state);
  }
  void scan_backward(const ScanDims& d, const ScanInputs<T>& in, const T* dout, const T*,
                     const ScanGrads<T>& g) const {
    cpu::selective_scan_backward<T>(d, in, dout, g);
  }

  // The Mamba mixer's recurrent step (generation).
  void conv1d_step(const cpu::Conv1dStepDims& d, T* window, const T* x, const T* w, const T* b, T* y,
                   bool silu) const {
    cpu::conv1d_step<T>(d, window, x, w, b, y, silu);
  }
  // The pre-norm, in_proj and conv step in one op (ops/mamba_input_step): the CPU takes any shape.
  bool fuses_mamba_input_step(const cpu::MambaInputStepDims&) const { return true; }
  void mamba_input_step(const cpu::MambaInputStepDims& d, const T* x, const T* residual, const T* norm_weight,
                        T* residual_out, const T* in_proj, T* window, const T* conv_w, const T* conv_b, T* xc,
                        T* z) const {
    cpu::mamba_input_step<T>(d, x, residual, norm_weight, residual_out, in_proj, window, conv_w, conv_b, xc, z);
  }
  void scan_step(const cpu::ScanStepDims& d, const ScanInputs<T>& in, T* h, T* out) const {
    cpu::selective_scan_step<T>(d, in, h, out);
  }
  void scan_step(const cpu::ScanStepDims& d, const ScanInputs<T>& in, const cpu::StepProjection<T>& projection, T* h,
                 T* out) const {
    cpu::selective_scan_step<T>(d, in, projection, h, out);
  }

  // Attention.
  void check_attention_shape(int64_t) const {}
  void rope_forward(const cpu::RopeDims& d, double base, const T* x, T* y) const {
    cpu::rope_forward<T>(d, base, x, y);
  }
  void rope_backward(const cpu::RopeDims& d, double base, const T* dy, T* dx) const {
    cpu::rope_backward<T>(d, base, dy, dx);
  }
  void attention_forward(const cpu::AttentionDims& d, const T* q, const T* k, const T* v, T* out, T* lse) const {
    cpu::attention_forward<T>(d, q, k, v, out, lse);
  }
  void attention_backward(const cpu::AttentionDims& d, const T* q, const T* k, const T* v, const T* out, const T* lse,
                          const T* dout, T* dq, T* dk, T* dv) const {
    cpu::attention_backward<T>(d, q, k, v, out, lse, dout, dq, dk, dv);
  }
  // The CPU step needs no scratch.
  int64_t attention_decode_scratch(const cpu::AttentionDecodeDims&) const { return 0; }
  void attention_decode(const cpu::AttentionDecodeDims& d, const T* q, const T* k, const T* v, T* k_cache, T* v_cache,
                        const int32_t* positions, T* out, Real*) const {
    cpu::attention_decode<T>(d, q, k, v, k_cache, v_cache, positions, out);
  }

  // Mixture of experts.
  void route_forward(const RouterOptions& o, const T* logits, int64_t tokens, int64_t experts, T* probs, T* gates,
                     Routing& r) const {
    cpu::route_forward<T>(o, logits, tokens, experts, probs, gates, r);
  }
  void route_backward(const RouterOptions& o, const T* probs, const Routing& r, const T* dgates, T* dlogits) const {
    cpu::route_backward<T>(o, probs, r, dgates, dlogits);
  }
  void route_choices(const RouterOptions& o, const T* logits, int64_t tokens, int64_t experts, T* probs, T* gates,
                     int32_t* expert) const {
    cpu::route_choices<T>(o, logits, tokens, experts, probs, gates, expert);
  }
  void segment_offsets(const int64_t* counts, int64_t experts, int64_t segment, int64_t* offsets) const {
    cpu::segment_offsets(counts, experts, segment, offsets);
  }
  void place(const int32_t* expert, const uint8_t* kept, const int32_t* rank, const int64_t* offsets, int64_t capacity,
             int64_t assignments, int64_t slots, int32_t* slot, int32_t* source) const {
    cpu::place(expert, kept, rank, offsets, capacity, assignments, slots, slot, source);
  }
  void gather(const T* src, const T* scale, const int32_t* source, int64_t slots, int64_t tokens, int64_t d,
              T* dst) const {
    cpu::gather<T>(src, scale, source, slots, tokens, d, dst);
  }
  void combine(const T* src, const T* scale, const int32_t* slot, int64_t tokens, int64_t top_k, int64_t d,
               T* dst) const {
    cpu::combine<T>(src, scale, slot, tokens, top_k, d, dst);
  }
  void gate_grad(const T* dy, const T* out, const int32_t* slot, int64_t tokens, int64_t assignments, int64_t d,
                 T* dgates) const {
    cpu::gate_grad<T>(dy, out, slot, tokens, assignments, d, dgates);
  }
  void expert_decode(const cpu::ExpertDecodeDims& d, const T* x, const int32_t* expert, const T* gate, const T* fc1,
                     const T* fc2, T* hidden, T* y) const {
    cpu::expert_decode<T>(d, x, expert, gate, fc1, fc2, hidden, y);
  }

  // The language model's ends.
  void argmax(const Real* x, int64_t rows, int64_t n, int64_t ld, int32_t* out) const {
    cpu::argmax<Real>(x, rows, n, ld, out);
  }
  void embedding_forward(const int32_t* ids, const T* w, T* out, int64_t tokens, int64_t dim) const {
    cpu::embedding_forward<T>(ids, w, out, tokens, dim);
  }
  void embedding_backward(const int32_t* ids, const T* dout, T* dw, int64_t tokens, int64_t dim, int64_t) const {
    cpu::embedding_backward<T>(ids, dout, dw, tokens, dim);
  }
  void rmsnorm_forward(const T* x, const T* residual, const T* w, T* residual_out, T* y, T* rstd, int64_t rows,
                       int64_t dim, double eps) const {
    cpu::rmsnorm_forward<T>(x, residual, w, residual_out, y, rstd, rows, dim, T(eps));
  }
  void rmsnorm_backward(const T* residual_out, const T* rstd, const T* w, const T* dy, const T* dresidual_out, T* dx,
                        T* dw, int64_t rows, int64_t dim) const {
    cpu::rmsnorm_backward<T>(residual_out, rstd, w, dy, dresidual_out, dx, dw, rows, dim);
  }
  void layernorm_forward(const T* x, const T* residual, const T* w, const T* bias, T* residual_out, T* y, T* mean,
                         T* rstd, int64_t rows, int64_t dim, double eps) const {
    cpu::layernorm_forward<T>(x, residual, w, bias, residual_out, y, mean, rstd, rows, dim, T(eps));
  }
  void layernorm_backward(const T* residual_out, const T* mean, const T* rstd, const T* w, const T* dy,
                          const T* dresidual_out, T* dx, T* dw, T* dbias, int64_t rows, int64_t dim) const {
    cpu::layernorm_backward<T>(residual_out, mean, rstd, w, dy, dresidual_out, dx, dw, dbias, rows, dim);
  }
  void cross_entropy_forward(const cpu::HeadDims& d, const T* h, const T* embedding, const int32_t* targets, T* lse,
                             double* loss) const {
    *loss = cpu::cross_entropy_forward<T>(d, h, embedding, targets, lse);
  }
  void cross_entropy_forward_backward(const cpu::HeadDims& d, const T* h, const T* embedding, const int32_t* targets,
                                      T* lse, double* loss, double dloss, T* dh, T* dembedding) const {
    *loss = cpu::cross_entropy_forward_backward<T>(d, h, embedding, targets, lse, T(dloss), dh, dembedding);
  }

  // The optimizer (ops/grad_clip's clip_coefficient): norm_coef[0] = the gradient norm, [1] =
  // the coefficient adamw applies, NaN when the step must be skipped.
  void clip_coefficient(const std::vector<cpu::GradSpan<T>>& grads, double max_norm, double scale,
                        const double* loss, double* norm_coef, double elsewhere = 0) const {
    cpu::clip_coefficient<T>(grads, max_norm, scale, loss, norm_coef, norm_coef + 1, elsewhere);
  }
  // out[0] = Σ g² over the spans (ops/grad_clip).
  void sum_squares(const std::vector<cpu::GradSpan<T>>& grads, double* out) const { *out = cpu::sum_squares<T>(grads); }
  void adamw(const cpu::AdamWParams& hp, const std::vector<OptimizerTensor<T, T>>& tensors,
             const double* norm_coef) const {
    if (!std::isfinite(norm_coef[1])) return;  // a skipped step changes nothing
    const T scale = T(norm_coef[1]);
    for (const auto& t : tensors) {
      // Clipping scales the gradients in place, as torch's clip_grad_norm_ does.
      if (norm_coef[1] != 1.0)
        for (int64_t i = 0; i < t.size; ++i) t.grad[i] *= scale;
      cpu::AdamWParams p = hp;
      p.weight_decay = t.weight_decay;
      cpu::adamw_update<T>(p, t.param, t.grad, t.m, t.v, t.size);
    }
  }
};

}  // namespace ml
