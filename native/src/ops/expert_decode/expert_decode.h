// expert_decode: a mixture of experts' feed-forward blocks for the few tokens of a decode step,
// each token's chosen experts applied to it directly. The slot layout (ops/moe_dispatch) runs
// every expert over its slots; here only the chosen experts' weights are read, which at batch 1
// is what a decode step's time is made of.
//   x (tokens, d); expert, gate (top_k · tokens): the router's choices in its order,
//   a = choice · tokens + token (ops/router's route_choices); a decode step drops nothing.
//   fc1 (experts, fc1_rows, d), fc2 (experts, d, hidden): nn/ffn.h's stacked layouts, where a
//   gated activation's fc1 rows are [up; gate] (fc1_rows = 2 · hidden), else fc1_rows = hidden.
//   hidden (top_k · tokens, hidden): scratch, per assignment
//     gelu:   act(fc1[e] x_t)                       swiglu: up · silu(gate)    geglu: up · gelu(gate)
//   y[t] = Σ over t's a, in choice order, of gate[a] · (fc2[e_a] · hidden[a])   (overwritten)
// Values are rounded to T where the slot layout stores them (fc1's halves, the activation,
// each expert's output), so both layouts give the same result.
#pragma once
#include <cstdint>

#include "../../core/host_device.h"

namespace ml::cpu {

enum class ExpertActivation { Gelu, SwiGLU, GeGLU };

struct ExpertDecodeDims {
  int64_t tokens, top_k, d, hidden;
  ExpertActivation activation;
  ML_HD bool gated() const { return activation != ExpertActivation::Gelu; }
  ML_HD int64_t fc1_rows() const { return gated() ? 2 * hidden : hidden; }
};

template <typename T>
void expert_decode(const ExpertDecodeDims& dims, const T* x, const int32_t* expert, const T* gate, const T* fc1,
                   const T* fc2, T* hidden, T* y);

}  // namespace ml::cpu

#include "../../core/cuda_fwd.h"

namespace ml::cuda {

using cpu::ExpertActivation;
using cpu::ExpertDecodeDims;

// The same on device pointers, enqueued on `stream`: T is float or __nv_bfloat16, dot products
// in fp32. One warp per output value: fc1's rows of every assignment, then fc2's rows of every
// token, so each chosen expert's weights are read once.
template <typename T>
void expert_decode(const ExpertDecodeDims& dims, const T* x, const int32_t* expert, const T* gate, const T* fc1,
                   const T* fc2, T* hidden, T* y, cudaStream_t stream);

}  // namespace ml::cuda
