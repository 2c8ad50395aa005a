// mamba_input_step: the front of a Mamba layer's decode step (one token per sequence), the
// pre-norm, in_proj and the conv step in one op, so that a decode step launches three kernels
// fewer per layer (at batch 1 each is a few microseconds of mostly waiting).
//   r = x + residual (residual may be null);  residual_out = r               (rmsnorm's forward)
//   n = r · rsqrt(mean(r²) + eps) · norm_weight
//   [xi | z] = n · in_projᵀ                  in_proj (2·d_inner, d_model): xi's rows, then z's
//   xc = silu(conv1d_step(window, xi))       (conv1d_step: the window then holds xi last)
//   x, residual, residual_out (batch, d_model); xc, z (batch, d_inner);
//   window (batch, width − 1, d_inner); conv_weight (d_inner, width); conv_bias (d_inner) or null
#pragma once
#include <cstdint>

namespace ml::cpu {

struct MambaInputStepDims {
  int64_t batch, d_model, d_inner, width;
  double eps;
};

// The reference: rmsnorm_forward, gemm and conv1d_step in a row, each rounding as it does alone.
template <typename T>
void mamba_input_step(const MambaInputStepDims& d, const T* x, const T* residual, const T* norm_weight,
                      T* residual_out, const T* in_proj, T* window, const T* conv_weight, const T* conv_bias, T* xc,
                      T* z);

}  // namespace ml::cpu

#include "../../core/cuda_fwd.h"

namespace ml::cuda {

using cpu::MambaInputStepDims;

// Whether the CUDA op takes this shape in one kernel (a few rows, the normed rows fitting in
// shared memory, width ≤ 4); otherwise run rmsnorm_forward, gemm and conv1d_step. Where it fits
// it is also the faster: on an H200 one kernel beat three at every Mamba shape once its norm was
// one round trip per block (bench/NOTES-decode.md, 2026-12-04: 1.4b 1.27 against 1.42 ms/token).
// MAMBALAB_FUSED_DECODE=0 answers false, to measure one against the other.
bool mamba_input_step_fits(const MambaInputStepDims& d, int64_t element_bytes);

// The same on device pointers, enqueued on `stream`: x, in_proj, window, xc, z are T (float or
// __nv_bfloat16); the residual stream, norm_weight and the conv's weights are fp32. The normed
// rows and xi are rounded to T as the separate ops round them; sums in fp32. As a chained launch
// it reads the window and the conv's weights before waiting for the kernel before it, which
// therefore must not write them (a decode step's never does: the previous token's front did).
template <typename T>
void mamba_input_step(const MambaInputStepDims& d, const T* x, const float* residual, const float* norm_weight,
                      float* residual_out, const T* in_proj, T* window, const float* conv_weight,
                      const float* conv_bias, T* xc, T* z, cudaStream_t stream);

}  // namespace ml::cuda
