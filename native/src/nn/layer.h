// A layer of the residual stream on backend B: maps (batch·len, d_model) rows of B::Act to rows
// of the same shape. forward keeps what backward needs (x itself by pointer: it must stay valid
// until backward, as the LM keeps every layer's normed input); backward overwrites dx and
// accumulates the parameter gradients. Everything is enqueued on the backend: nothing waits
// for the device unless capturable() says so.
#pragma once
#include <cstdint>
#include <vector>

#include "../core/error.h"
#include "../dist/collective.h"
#include "backend.h"

namespace ml {

// One decode step of generation: one token for each of `batch` sequences.
struct DecodeStep {
  int64_t batch;
  const int32_t* positions;  // (batch) in the backend's memory: tokens already in each sequence's state
};

// A decode step's input before the layer's pre-norm: the layer's input is
// rmsnorm(x + residual) · weight, and residual_out gets x + residual (the residual stream).
template <class B>
struct PreNormInput {
  const typename B::Act* x;
  const typename B::Real* residual;  // null before the first layer
  const typename B::Real* weight;
  typename B::Real* residual_out;
  double eps;
};

template <class B>
class Layer {
 public:
  using Act = typename B::Act;

  virtual ~Layer() = default;
  virtual void forward(const Act* x, Act* y, int64_t batch, int64_t len) = 0;
  virtual void backward(const Act* dy, Act* dx) = 0;
  // Training and inference differ for some routers (Sinkhorn balances only in training) and
  // for the scan (it saves states for the backward only in training).
  virtual void set_training(bool) {}
  // Whether forward and backward can be captured into a CUDA graph: no host synchronisation
  // and no reallocation while shapes stay the same.
  virtual bool capturable() const { return true; }
  // One entry per mixture of experts inside this layer, in order: the last forward's routing.
  virtual void expert_stats(std::vector<ExpertStats>&) const {}
  // Expert parallel: each mixture of experts inside runs only this rank's block of its experts
  // and exchanges tokens with the other ranks through `ranks` (null: every expert here).
  virtual void share_experts(Collective*) {}

  // Generation, at inference (nn/lm.h). A layer with a recurrent state (Mamba: conv window and
  // SSM state; attention: KV cache) keeps one per sequence: start_generation makes room for
  // `batch` sequences of up to `capacity` tokens; prefill is forward over one sequence's
  // `len` tokens (batch 1) that leaves its state in row `row`; decode advances every row by
  // one token. Stateless layers run forward.
  virtual void start_generation(int64_t batch, int64_t capacity) {}
  virtual void prefill(const Act* x, Act* y, int64_t len, int64_t row) { forward(x, y, 1, len); }
  virtual void decode(const Act* x, Act* y, const DecodeStep& step) { forward(x, y, step.batch, 1); }
  // decode from before the pre-norm, for a layer that folds the norm into its first kernel;
  // false: it does not (for this step's shape), and the caller norms and calls decode.
  virtual bool decode_from_residual(const PreNormInput<B>& in, Act* y, const DecodeStep& step) { return false; }
};

}  // namespace ml
