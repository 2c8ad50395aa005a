#include "ops/silu/silu.h"

#include "../harness.h"

using namespace mltest;

NATIVE_TEST(silu_backward_matches_finite_differences) {
  ml::Rng rng(5);
  const int64_t n = 40000;  // over one parallel chunk
  auto x = random_vector(rng, n, -8, 8), dy = random_vector(rng, n);
  std::vector<double> y(n), dx(n);
  auto loss = [&] {
    ml::cpu::silu_forward<double>(x.data(), y.data(), n);
    return dot(y, dy);
  };
  ml::cpu::silu_backward<double>(x.data(), dy.data(), dx.data(), n);
  return check_gradients(loss, {{"x", &x, &dx}}, rng, 1e-6, 200);
}
