// rmsnorm with the residual add fused in front (the pre-norm block of Mamba's reference).
//   forward:  r = x + residual (residual may be null: r = x);  rstd = 1/sqrt(mean(r²) + eps)
//             y = r · rstd · weight                 x, residual, r, y (rows, dim); rstd (rows)
//   backward: n = r·rstd;  dn = dy·weight
//             dr = rstd · (dn − n · mean(dn·n)) + dr_in      (dr_in: gradient that reached r
//             directly through the residual stream, may be null); dx = dresidual = dr
//             dweight += Σ_rows dy · n
#pragma once
#include <cstdint>

namespace ml::cpu {

template <typename T>
void rmsnorm_forward(const T* x, const T* residual, const T* weight, T* residual_out, T* y, T* rstd, int64_t rows,
                     int64_t dim, T eps);

template <typename T>
void rmsnorm_backward(const T* residual_out, const T* rstd, const T* weight, const T* dy, const T* dresidual_out,
                      T* dx, T* dweight, int64_t rows, int64_t dim);

}  // namespace ml::cpu

#include "../../core/cuda_fwd.h"

namespace ml::cuda {

// The same on device pointers, enqueued on `stream`, with the residual stream in fp32 (as
// the reference's residual_in_fp32): x and y are T (float or __nv_bfloat16); residual,
// residual_out, rstd, weight, the residual-stream gradients dresidual_out and dx, and
// dweight are fp32. dweight accumulates through per-block partial sums added in a fixed
// order (deterministic).
template <typename T>
void rmsnorm_forward(const T* x, const float* residual, const float* weight, float* residual_out, T* y, float* rstd,
                     int64_t rows, int64_t dim, float eps, cudaStream_t stream);

template <typename T>
void rmsnorm_backward(const float* residual_out, const float* rstd, const float* weight, const T* dy,
                      const float* dresidual_out, float* dx, float* dweight, int64_t rows, int64_t dim,
                      cudaStream_t stream);

}  // namespace ml::cuda
