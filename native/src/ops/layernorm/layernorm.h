// layernorm with a bias and the residual add fused in front, as torch.nn.LayerNorm after the
// residual stream's last add (BlackMamba's final norm).
//   forward:  r = x + residual (residual may be null: r = x);  μ = mean(r)
//             rstd = 1/sqrt(mean((r − μ)²) + eps);  n = (r − μ)·rstd
//             y = n · weight + bias          x, residual, r, y (rows, dim); mean, rstd (rows)
//   backward: dn = dy·weight
//             dr = rstd · (dn − mean(dn) − n · mean(dn·n)) + dr_in   (dr_in may be null); dx = dr
//             dweight += Σ_rows dy · n;  dbias += Σ_rows dy
#pragma once
#include <cstdint>

namespace ml::cpu {

template <typename T>
void layernorm_forward(const T* x, const T* residual, const T* weight, const T* bias, T* residual_out, T* y, T* mean,
                       T* rstd, int64_t rows, int64_t dim, T eps);

template <typename T>
void layernorm_backward(const T* residual_out, const T* mean, const T* rstd, const T* weight, const T* dy,
                        const T* dresidual_out, T* dx, T* dweight, T* dbias, int64_t rows, int64_t dim);

}  // namespace ml::cpu

#include "../../core/cuda_fwd.h"

namespace ml::cuda {

// The same on device pointers, enqueued on `stream`, with the residual stream in fp32 (as
// rmsnorm's): x and y are T (float or __nv_bfloat16); everything else is fp32. dweight and
// dbias accumulate through per-block partial sums added in a fixed order (deterministic).
template <typename T>
void layernorm_forward(const T* x, const float* residual, const float* weight, const float* bias, float* residual_out,
                       T* y, float* mean, float* rstd, int64_t rows, int64_t dim, float eps, cudaStream_t stream);

template <typename T>
void layernorm_backward(const float* residual_out, const float* mean, const float* rstd, const float* weight,
                        const T* dy, const float* dresidual_out, float* dx, float* dweight, float* dbias, int64_t rows,
                        int64_t dim, cudaStream_t stream);

}  // namespace ml::cuda
