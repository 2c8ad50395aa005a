#include "gpu/gpu_test.h"
#include "ops/conv1d_step/conv1d_step.h"

using namespace gputest;

namespace {

// Three steps from a random window: every output and the shifted window against the fp64 CPU.
template <typename T>
std::string check_steps(ml::cpu::Conv1dStepDims d, bool silu, uint64_t seed) {
  ml::Rng rng(seed);
  const int64_t n = d.batch * d.dim, wn = d.batch * (d.width - 1) * d.dim;
  auto window = rounded<T>(uniform(rng, wn));
  const auto w = rounded<float>(uniform(rng, d.dim * d.width)), bias = rounded<float>(uniform(rng, d.dim));
  Dev<T> gwindow(window), gy(n);
  Dev<float> gw(w), gbias(bias);
  Errors errors(bound<T>());
  for (int step = 0; step < 3; ++step) {
    const auto x = rounded<T>(uniform(rng, n, -2, 2));
    std::vector<double> y(n);
    ml::cpu::conv1d_step<double>(d, window.data(), x.data(), w.data(), bias.data(), y.data(), silu);
    Dev<T> gx(x);
    gy.poison();
    ml::cuda::conv1d_step<T>(d, gwindow.get(), gx.get(), gw.get(), gbias.get(), gy.get(), silu, nullptr);
    sync("conv1d_step");
    errors.add(mltest::str("y", step), gy.download(), y);
    errors.add(mltest::str("window", step), gwindow.download(), window);
  }
  return errors.report();
}

}  // namespace

NATIVE_TEST(cuda_conv1d_step_fp32_matches_cpu) {
  return check_steps<float>({3, 130, 4}, true, 621) + "; " + check_steps<float>({1, 5, 2}, false, 622);
}
NATIVE_TEST(cuda_conv1d_step_bf16_matches_cpu) { return check_steps<bf16>({2, 1536, 4}, true, 623); }
