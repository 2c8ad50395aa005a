#include "ops/conv1d_step/conv1d_step.h"

#include <cmath>

#include "../harness.h"
#include "ops/conv1d/conv1d.h"

using namespace mltest;

namespace {

// Steps through whole sequences from an empty window: each step's output equals the parallel
// convolution's at that time (the same sums in the same order, up to fused multiply-adds).
std::string check_steps(int64_t batch, int64_t len, int64_t dim, int64_t width, bool silu, uint64_t seed) {
  ml::Rng rng(seed);
  const auto x = random_vector(rng, batch * len * dim, -2, 2), w = random_vector(rng, dim * width);
  const auto b = random_vector(rng, dim);
  std::vector<double> want(x.size());
  ml::cpu::conv1d_forward<double>({batch, len, dim, width}, x.data(), w.data(), b.data(), want.data(), silu);
  std::vector<double> window(batch * (width - 1) * dim, 0.0), xt(batch * dim), yt(batch * dim);
  Worst err("relative error", 1e-14);
  for (int64_t t = 0; t < len; ++t) {
    for (int64_t r = 0; r < batch; ++r)
      for (int64_t c = 0; c < dim; ++c) xt[r * dim + c] = x[(r * len + t) * dim + c];
    ml::cpu::conv1d_step<double>({batch, dim, width}, window.data(), xt.data(), w.data(), b.data(), yt.data(), silu);
    for (int64_t r = 0; r < batch; ++r)
      for (int64_t c = 0; c < dim; ++c)
        err.add(str("step ", t, " row ", r, " channel ", c),
                std::abs(yt[r * dim + c] - want[(r * len + t) * dim + c]) /
                    std::max(1.0, std::abs(want[(r * len + t) * dim + c])));
  }
  return str("width ", width, ": ", err.report());
}

}  // namespace

NATIVE_TEST(conv1d_step_reproduces_the_parallel_conv) {
  return check_steps(2, 9, 6, 4, true, 41) + "; " + check_steps(3, 5, 4, 3, false, 42) + "; " +
         check_steps(1, 4, 5, 1, true, 43);
}
