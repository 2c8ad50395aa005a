// Channels are independent given B and C, so threads split the channel axis. The backward
// recomputes each block of channels' states forward, then walks time backwards; dB and dC
// (sums over channels) go to per-thread buffers added in thread order (no atomics).
#include <algorithm>
#include <cmath>
#include <vector>

#include "../../core/parallel.h"
#include "../silu/silu.h"
#include "selective_scan.h"

namespace ml::cpu {
namespace {

constexpr int64_t kBlock = 16;  // channels whose states are held at once in the backward

template <typename T>
T softplus(T x) {
  return x > T(20) ? x : std::log1p(std::exp(x));
}

template <typename T>
T softplus_grad(T x) {
  return x > T(20) ? T(1) : sigmoid(x);
}

}  // namespace

template <typename T>
void selective_scan_forward(const ScanDims& d, const ScanInputs<T>& in, T* out, T* final_state) {
  const int64_t N = d.dstate;
  parallel_for(d.dim, 4, [&](int64_t c0, int64_t c1) {
    std::vector<T> h(N);
    for (int64_t b = 0; b < d.batch; ++b)
      for (int64_t c = c0; c < c1; ++c) {
        std::fill(h.begin(), h.end(), T(0));
        const T* A = in.A + c * N;
        for (int64_t t = 0; t < d.len; ++t) {
          const int64_t at = (b * d.len + t) * d.dim + c;
          const T* Bt = in.B + (b * d.len + t) * N;
          const T* Ct = in.C + (b * d.len + t) * N;
          const T dt = softplus(in.delta[at] + in.delta_bias[c]);
          const T x = in.u[at];
          T y = in.D[c] * x;
          for (int64_t n = 0; n < N; ++n) {
            h[n] = std::exp(dt * A[n]) * h[n] + dt * Bt[n] * x;
            y += Ct[n] * h[n];
          }
          out[at] = y * silu(in.z[at]);
        }
        if (final_state) std::copy(h.begin(), h.end(), final_state + (b * d.dim + c) * N);
      }
  });
}

template <typename T>
void selective_scan_backward(const ScanDims& d, const ScanInputs<T>& in, const T* dout, const ScanGrads<T>& g) {
  const int64_t N = d.dstate, L = d.len;
  const int64_t bc_size = d.batch * L * N;
  std::vector<std::vector<T>> dB_part(num_threads()), dC_part(num_threads());

  parallel_for(d.dim, 4, [&](int64_t c0, int64_t c1) {
    std::vector<T>& dB = dB_part[thread_index()];
    std::vector<T>& dC = dC_part[thread_index()];
    dB.assign(bc_size, T(0));
    dC.assign(bc_size, T(0));
    std::vector<T> states(L * kBlock * N), carry(kBlock * N);

    for (int64_t blk = c0; blk < c1; blk += kBlock) {
      const int64_t nb = std::min(kBlock, c1 - blk);
      for (int64_t b = 0; b < d.batch; ++b) {
        // Forward again, keeping every state of this block of channels.
        for (int64_t j = 0; j < nb; ++j) {
          const int64_t c = blk + j;
          const T* A = in.A + c * N;
          for (int64_t t = 0; t < L; ++t) {
            const int64_t at = (b * L + t) * d.dim + c;
            const T* Bt = in.B + (b * L + t) * N;
            const T dt = softplus(in.delta[at] + in.delta_bias[c]);
            T* h = &states[(t * kBlock + j) * N];
            const T* prev = t ? &states[((t - 1) * kBlock + j) * N] : nullptr;
            for (int64_t n = 0; n < N; ++n) h[n] = (prev ? std::exp(dt * A[n]) * prev[n] : T(0)) + dt * Bt[n] * in.u[at];
          }
        }
        std::fill(carry.begin(), carry.end(), T(0));
        for (int64_t t = L - 1; t >= 0; --t) {
          const T* Bt = in.B + (b * L + t) * N;
          const T* Ct = in.C + (b * L + t) * N;
          T* dBt = &dB[(b * L + t) * N];
          T* dCt = &dC[(b * L + t) * N];
          for (int64_t j = 0; j < nb; ++j) {
            const int64_t c = blk + j;
            const int64_t at = (b * L + t) * d.dim + c;
            const T* A = in.A + c * N;
            const T* h = &states[(t * kBlock + j) * N];
            const T* prev = t ? &states[((t - 1) * kBlock + j) * N] : nullptr;
            const T x = in.u[at], zt = in.z[at];
            const T pre = in.delta[at] + in.delta_bias[c];
            const T dt = softplus(pre);

            T y = in.D[c] * x;
            for (int64_t n = 0; n < N; ++n) y += Ct[n] * h[n];
            const T dy = dout[at] * silu(zt);
            g.dz[at] = dout[at] * y * silu_grad(zt);
            g.dD[c] += dy * x;

            T du = dy * in.D[c], ddt = 0;
            T* cr = &carry[j * N];
            for (int64_t n = 0; n < N; ++n) {
              const T gh = dy * Ct[n] + cr[n];  // dLoss/dh_t
              dCt[n] += dy * h[n];
              const T a = std::exp(dt * A[n]);
              if (prev) {
                const T da = gh * prev[n];
                ddt += da * a * A[n];
                g.dA[c * N + n] += da * a * dt;
              }
              ddt += gh * Bt[n] * x;
              dBt[n] += gh * dt * x;
              du += gh * dt * Bt[n];
              cr[n] = a * gh;
            }
            g.du[at] = du;
            const T ddelta = ddt * softplus_grad(pre);
            g.ddelta[at] = ddelta;
            g.ddelta_bias[c] += ddelta;
          }
        }
      }
    }
  });

  std::fill_n(g.dB, bc_size, T(0));
  std::fill_n(g.dC, bc_size, T(0));
  for (size_t p = 0; p < dB_part.size(); ++p) {
    if (dB_part[p].empty()) continue;
    for (int64_t i = 0; i < bc_size; ++i) {
      g.dB[i] += dB_part[p][i];
      g.dC[i] += dC_part[p][i];
    }
  }
}

#define ML_INSTANTIATE(T)                                                                  \
  template void selective_scan_forward<T>(const ScanDims&, const ScanInputs<T>&, T*, T*); \
  template void selective_scan_backward<T>(const ScanDims&, const ScanInputs<T>&, const T*, const ScanGrads<T>&);
ML_INSTANTIATE(float)
ML_INSTANTIATE(double)

}  // namespace ml::cpu
