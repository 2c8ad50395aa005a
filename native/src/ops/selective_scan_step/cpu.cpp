#include <algorithm>
#include <cmath>
#include <vector>

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

// Projected: x_proj's rows split into delta (through dt_proj), B and C, then the step.
template <typename T>
void selective_scan_step(const ScanStepDims& d, const ScanInputs<T>& in, const StepProjection<T>& p, T* h, T* out) {
  const int64_t N = d.dstate, R = p.rank, width = R + 2 * N;
  std::vector<T> delta(size_t(d.batch * d.dim)), B(size_t(d.batch * N)), C(size_t(d.batch * N));
  for (int64_t b = 0; b < d.batch; ++b) {
    const T* row = p.xproj + b * width;
    for (int64_t c = 0; c < d.dim; ++c) {
      T sum = 0;
      for (int64_t r = 0; r < R; ++r) sum += row[r] * p.dt_weight[c * R + r];
      delta[size_t(b * d.dim + c)] = sum;
    }
    std::copy(row + R, row + R + N, B.begin() + b * N);
    std::copy(row + R + N, row + width, C.begin() + b * N);
  }
  ScanInputs<T> step = in;
  step.delta = delta.data(), step.B = B.data(), step.C = C.data();
  selective_scan_step(d, step, h, out);
}

#define ML_INSTANTIATE(T)                                                                            \
  template void selective_scan_step<T>(const ScanStepDims&, const ScanInputs<T>&, T*, T*);            \
  template void selective_scan_step<T>(const ScanStepDims&, const ScanInputs<T>&, const StepProjection<T>&, T*, T*);
ML_INSTANTIATE(float)
ML_INSTANTIATE(double)

}  // namespace ml::cpu
