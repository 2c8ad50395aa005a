// selective_scan: the selective state-space recurrence of Mamba (S6), with the delta bias
// and softplus, the D skip and the SiLU(z) gate fused in.
//   u, delta, z, out (batch, len, dim);  B, C (batch, len, dstate);  A (dim, dstate);  D, delta_bias (dim)
//   dt      = softplus(delta + delta_bias)                           (softplus(x) = x for x > 20)
//   h_t     = exp(dt_t · A) ⊙ h_{t−1} + dt_t · B_t · u_t              (h_{−1} = 0, per channel: dstate values)
//   out_t   = (⟨C_t, h_t⟩ + D · u_t) · silu(z_t)
// backward recomputes the states; du, ddelta, dB, dC, dz are overwritten, dA, dD, ddelta_bias accumulate.
#pragma once
#include <cstdint>

namespace ml::cpu {

struct ScanDims {
  int64_t batch, len, dim, dstate;
};

template <typename T>
struct ScanInputs {
  const T *u, *delta, *A, *B, *C, *D, *z, *delta_bias;
};

template <typename T>
struct ScanGrads {
  T *du, *ddelta, *dA, *dB, *dC, *dD, *dz, *ddelta_bias;
};

template <typename T>
void selective_scan_forward(const ScanDims& dims, const ScanInputs<T>& in, T* out);

template <typename T>
void selective_scan_backward(const ScanDims& dims, const ScanInputs<T>& in, const T* dout, const ScanGrads<T>& grads);

}  // namespace ml::cpu
