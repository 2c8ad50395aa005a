#include "ops/geglu/geglu.h"

#include "../harness.h"

using namespace mltest;

NATIVE_TEST(geglu_backward_matches_finite_differences) {
  ml::Rng rng(103);
  const int64_t n = 300;
  auto gate = random_vector(rng, n, -4, 4), up = random_vector(rng, n, -2, 2), dy = random_vector(rng, n);
  std::vector<double> y(n), dgate(n), dup(n);
  auto loss = [&] {
    ml::cpu::geglu_forward<double>(gate.data(), up.data(), y.data(), n);
    return dot(y, dy);
  };
  ml::cpu::geglu_backward<double>(gate.data(), up.data(), dy.data(), dgate.data(), dup.data(), n);
  return check_gradients(loss, {{"gate", &gate, &dgate}, {"up", &up, &dup}}, rng, 1e-6, 100);
}
