#include "ops/mamba_input_step/mamba_input_step.h"

#include <cmath>

#include "../harness.h"

using namespace mltest;

namespace {

// A few steps against the contract written out element by element: the residual stream, z and
// xc of each step, and the window the steps leave.
std::string check_steps(ml::cpu::MambaInputStepDims d, bool with_residual, uint64_t seed) {
  ml::Rng rng(seed);
  const int64_t D = d.d_model, Di = d.d_inner, W = d.width;
  const auto norm_w = random_vector(rng, D, 0.5, 1.5), in_proj = random_vector(rng, 2 * Di * D);
  const auto conv_w = random_vector(rng, Di * W), conv_b = random_vector(rng, Di);
  auto window = random_vector(rng, d.batch * (W - 1) * Di);
  auto want_window = window;
  Worst err("relative error", 1e-13);
  for (int step = 0; step < 3; ++step) {
    const auto x = random_vector(rng, d.batch * D, -2, 2), residual = random_vector(rng, d.batch * D, -2, 2);
    std::vector<double> residual_out(d.batch * D), xc(d.batch * Di), z(d.batch * Di);
    ml::cpu::mamba_input_step<double>(d, x.data(), with_residual ? residual.data() : nullptr, norm_w.data(),
                                      residual_out.data(), in_proj.data(), window.data(), conv_w.data(),
                                      conv_b.data(), xc.data(), z.data());
    for (int64_t b = 0; b < d.batch; ++b) {
      std::vector<double> r(D), n(D);
      double sumsq = 0;
      for (int64_t j = 0; j < D; ++j) {
        r[j] = x[b * D + j] + (with_residual ? residual[b * D + j] : 0.0);
        sumsq += r[j] * r[j];
        err.add(str("step ", step, " residual_out"), std::abs(residual_out[b * D + j] - r[j]));
      }
      for (int64_t j = 0; j < D; ++j) n[j] = r[j] / std::sqrt(sumsq / double(D) + d.eps) * norm_w[j];
      for (int64_t c = 0; c < Di; ++c) {
        double xi = 0, zc = 0;
        for (int64_t j = 0; j < D; ++j) xi += n[j] * in_proj[c * D + j], zc += n[j] * in_proj[(Di + c) * D + j];
        err.add(str("step ", step, " z"), std::abs(z[b * Di + c] - zc) / std::max(1.0, std::abs(zc)));
        double pre = conv_b[c];
        double* past = want_window.data() + b * (W - 1) * Di + c;
        for (int64_t k = 0; k + 1 < W; ++k) pre += conv_w[c * W + k] * past[k * Di];
        pre += conv_w[c * W + W - 1] * xi;
        for (int64_t k = 0; k + 2 < W; ++k) past[k * Di] = past[(k + 1) * Di];
        if (W > 1) past[(W - 2) * Di] = xi;
        const double silu = pre / (1 + std::exp(-pre));
        err.add(str("step ", step, " xc"), std::abs(xc[b * Di + c] - silu) / std::max(1.0, std::abs(silu)));
      }
    }
    for (size_t i = 0; i < window.size(); ++i)
      err.add(str("step ", step, " window"), std::abs(window[i] - want_window[i]) / std::max(1.0, std::abs(want_window[i])));
  }
  return err.report();
}

}  // namespace

NATIVE_TEST(mamba_input_step_is_rmsnorm_in_proj_and_conv_step) {
  return check_steps({2, 12, 20, 4, 1e-5}, true, 81) + "; " + check_steps({1, 7, 5, 1, 1e-6}, false, 82) + "; " +
         check_steps({3, 9, 6, 2, 1e-5}, true, 83);
}
