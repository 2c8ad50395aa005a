#include "ops/gelu/gelu.h"

#include "../harness.h"

using namespace mltest;

NATIVE_TEST(gelu_backward_matches_finite_differences) {
  ml::Rng rng(101);
  const int64_t n = 500;
  auto x = random_vector(rng, n, -5, 5), dy = random_vector(rng, n);
  std::vector<double> y(n), dx(n);
  auto loss = [&] {
    ml::cpu::gelu_forward<double>(x.data(), y.data(), n);
    return dot(y, dy);
  };
  ml::cpu::gelu_backward<double>(x.data(), dy.data(), dx.data(), n);
  EXPECT(std::abs(ml::cpu::gelu(1.0) - 0.8413447460685429) < 1e-15, "gelu(1) = Φ(1)");
  return check_gradients(loss, {{"x", &x, &dx}}, rng, 1e-6, 100);
}
