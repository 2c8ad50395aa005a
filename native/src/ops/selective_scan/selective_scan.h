// selective_scan: the selective state-space recurrence of Mamba (S6), with the delta bias
// and softplus, the D skip and the SiLU(z) gate fused in.
//   u, delta, z, out (batch, len, dim);  B, C (batch, len, dstate);  A (dim, dstate);  D, delta_bias (dim)
//   dt      = softplus(delta + delta_bias)                           (softplus(x) = x for x > 20)
//   h_t     = exp(dt_t · A) ⊙ h_{t−1} + dt_t · B_t · u_t              (h_{−1} = 0, per channel: dstate values)
//   out_t   = (⟨C_t, h_t⟩ + D · u_t) · silu(z_t)
// final_state (batch, dim, dstate), when asked for: h after the last step, where generation's
// recurrent step (ops/selective_scan_step) takes over.
// backward recomputes the states; du, ddelta, dB, dC, dz are overwritten, dA, dD, ddelta_bias accumulate.
#pragma once
#include <cstdint>

namespace ml {

struct ScanDims {
  int64_t batch, len, dim, dstate;
};

// Activations are Act; the parameters A, D and delta_bias are Real. The CPU computes in one
// type; the GPU keeps activations in float or bf16 and the parameters in fp32, as the
// reference implementation does.
template <typename Act, typename Real = Act>
struct ScanInputs {
  const Act *u, *delta, *B, *C, *z;
  const Real *A, *D, *delta_bias;
};

template <typename Act, typename Real = Act>
struct ScanGrads {
  Act *du, *ddelta, *dB, *dC, *dz;  // overwritten
  Real *dA, *dD, *ddelta_bias;      // accumulate
};

}  // namespace ml

namespace ml::cpu {

template <typename T>
void selective_scan_forward(const ScanDims& dims, const ScanInputs<T>& in, T* out, T* final_state = nullptr);

template <typename T>
void selective_scan_backward(const ScanDims& dims, const ScanInputs<T>& in, const T* dout, const ScanGrads<T>& grads);

}  // namespace ml::cpu

#include "../../core/cuda_fwd.h"

namespace ml::cuda {

struct ScanOptions {
  // Steps between the states the forward saves for the backward: a multiple of 16. Fewer
  // saved states cost the backward one more recomputation of the forward per chunk.
  int64_t checkpoint_every = 64;
  // Backward without atomics: dB and dC (sums over channels) go through per-block partials
  // added in a fixed order, so two runs give bit-identical gradients.
  bool deterministic = true;
  // Parts each sequence is split into, scanned side by side (sequence_parallel.cuh): for when
  // batch × channels leave most of the GPU idle, as one long sequence does. 0 picks the count
  // from the GPU's size and the shape; 1 scans every sequence whole. The result is the same
  // up to rounding either way.
  int64_t segments = 0;
};

// Elements of the fp32 checkpoint buffer: (batch, ceil(len / checkpoint_every), dim, dstate).
int64_t scan_checkpoint_elements(const ScanDims& dims, const ScanOptions& options);

// The parts a scan of this shape splits each sequence into under these options (the
// segments option resolved against the current device).
int64_t scan_sequence_parts(const ScanDims& dims, const ScanOptions& options);

// The contract above on device pointers, enqueued on `stream`; dstate must be 2, 4, 8 or 16.
// The state lives in registers and never reaches device memory, except the checkpoints
// (may be null when no backward follows) and the fp32 final_state (may be null). The backward
// recomputes the forward from the checkpoints.
template <typename T>
void selective_scan_forward(const ScanDims& dims, const ScanInputs<T, float>& in, T* out, float* checkpoints,
                            const ScanOptions& options, cudaStream_t stream, float* final_state = nullptr);

template <typename T>
void selective_scan_backward(const ScanDims& dims, const ScanInputs<T, float>& in, const T* dout,
                             const float* checkpoints, const ScanGrads<T, float>& grads, const ScanOptions& options,
                             cudaStream_t stream);

}  // namespace ml::cuda
