#include <cmath>

#include "../../core/parallel.h"
#include "../silu/silu.h"
#include "selective_scan_step.h"

namespace ml::cpu {

// The scan's arithmetic, in its order, for one step (selective_scan/cpu.cpp).
template <typename T>
void selective_scan_step(const ScanStepDims& d, const ScanInputs<T>& in, T* h, T* out) {
  const int64_t N = d.dstate;
  parallel_for(d.batch * d.dim, 16, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = i / d.dim, c = i % d.dim;
      const T pre = in.delta[i] + in.delta_bias[c];
      const T dt = pre > T(20) ? pre : std::log1p(std::exp(pre));
      const T x = in.u[i];
      const T* A = in.A + c * N;
      const T* B = in.B + b * N;
      const T* C = in.C + b * N;
      T* hc = h + i * N;
      T y = in.D[c] * x;
      for (int64_t n = 0; n < N; ++n) {
        hc[n] = std::exp(dt * A[n]) * hc[n] + dt * B[n] * x;
        y += C[n] * hc[n];
      }
      out[i] = y * silu(in.z[i]);
    }
  });
}

#define ML_INSTANTIATE(T) template void selective_scan_step<T>(const ScanStepDims&, const ScanInputs<T>&, T*, T*);
ML_INSTANTIATE(float)
ML_INSTANTIATE(double)

}  // namespace ml::cpu
