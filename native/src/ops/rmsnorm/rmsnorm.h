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
