#include <cstddef>
#include <vector>

#include "../conv1d_step/conv1d_step.h"
#include "../gemm/gemm.h"
#include "../rmsnorm/rmsnorm.h"
#include "mamba_input_step.h"

namespace ml::cpu {

template <typename T>
void mamba_input_step(const MambaInputStepDims& d, const T* x, const T* residual, const T* norm_weight,
                      T* residual_out, const T* in_proj, T* window, const T* conv_weight, const T* conv_bias, T* xc,
                      T* z) {
  std::vector<T> normed(size_t(d.batch * d.d_model)), rstd(size_t(d.batch)), xi(size_t(d.batch * d.d_inner));
  rmsnorm_forward<T>(x, residual, norm_weight, residual_out, normed.data(), rstd.data(), d.batch, d.d_model, T(d.eps));
  gemm<T>(false, true, d.batch, d.d_inner, d.d_model, T(1), normed.data(), d.d_model, in_proj, d.d_model, T(0),
          xi.data(), d.d_inner);
  gemm<T>(false, true, d.batch, d.d_inner, d.d_model, T(1), normed.data(), d.d_model, in_proj + d.d_inner * d.d_model,
          d.d_model, T(0), z, d.d_inner);
  conv1d_step<T>({d.batch, d.d_inner, d.width}, window, xi.data(), conv_weight, conv_bias, xc, true);
}

#define ML_INSTANTIATE(T)                                                                                          \
  template void mamba_input_step<T>(const MambaInputStepDims&, const T*, const T*, const T*, T*, const T*, T*, \
                                    const T*, const T*, T*, T*);
ML_INSTANTIATE(float)
ML_INSTANTIATE(double)

}  // namespace ml::cpu
