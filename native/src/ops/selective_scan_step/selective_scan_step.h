// selective_scan_step: one time step of selective_scan (ops/selective_scan) per sequence, from
// and into its state h: the recurrent form a generated token takes.
//   h (batch, dim, dstate), updated in place;  u, delta, z, out (batch, dim);  B, C (batch, dstate)
//   A (dim, dstate);  D, delta_bias (dim)
//   dt  = softplus(delta + delta_bias);  h ← exp(dt · A) ⊙ h + dt · B · u
//   out = (⟨C, h⟩ + D · u) · silu(z)
// Starting from the state selective_scan_forward leaves after t steps (its final_state), a
// step gives the scan's output at step t.
// Projected, as a Mamba mixer's decode step feeds it: delta, B and C come from x_proj's output
// rows xproj (batch, rank + 2·dstate) = [dt_low | B | C], with delta = dt_low · dt_weightᵀ
// (dt_weight (dim, rank), dt_proj's weight) computed inside the step as that linear layer
// would (rounded to T); in.delta, in.B and in.C are not read. One launch instead of a product,
// and no copies of B and C.
#pragma once
#include <cstdint>

#include "../selective_scan/selective_scan.h"

namespace ml::cpu {

struct ScanStepDims {
  int64_t batch, dim, dstate;
};

template <typename T>
void selective_scan_step(const ScanStepDims& dims, const ScanInputs<T>& in, T* h, T* out);

template <typename T>
struct StepProjection {
  const T* xproj;      // (batch, rank + 2·dstate)
  const T* dt_weight;  // (dim, rank)
  int64_t rank;
};

template <typename T>
void selective_scan_step(const ScanStepDims& dims, const ScanInputs<T>& in, const StepProjection<T>& projection, T* h,
                         T* out);

}  // namespace ml::cpu

#include "../../core/cuda_fwd.h"

namespace ml::cuda {

using cpu::ScanStepDims;

// The same on device pointers, enqueued on `stream`: u, delta, z, B, C, out are T (float or
// __nv_bfloat16); A, D, delta_bias and the state h are fp32, as in the scan.
template <typename T>
void selective_scan_step(const ScanStepDims& dims, const ScanInputs<T, float>& in, float* h, T* out,
                         cudaStream_t stream);

using cpu::StepProjection;

// Projected; delta's sum in fp32, rounded to T.
template <typename T>
void selective_scan_step(const ScanStepDims& dims, const ScanInputs<T, float>& in, const StepProjection<T>& projection,
                         float* h, T* out, cudaStream_t stream);

}  // namespace ml::cuda
