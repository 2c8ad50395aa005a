#include "ops/a_log/a_log.h"

#include <cmath>

#include "../harness.h"

using namespace mltest;

NATIVE_TEST(a_log_backward_matches_finite_differences) {
  ml::Rng rng(7);
  const int64_t n = 64;
  auto a_log = random_vector(rng, n, -2, 3), dA = random_vector(rng, n);
  std::vector<double> A(n), da_log(n, 0.0);
  auto loss = [&] {
    ml::cpu::a_log_forward<double>(a_log.data(), A.data(), n);
    return dot(A, dA);
  };
  loss();
  for (double a : A) EXPECT(a < 0, "A must be negative, got ", a);
  ml::cpu::a_log_backward<double>(A.data(), dA.data(), da_log.data(), n);
  return check_gradients(loss, {{"A_log", &a_log, &da_log}}, rng);
}

NATIVE_TEST(a_log_backward_accumulates) {
  const std::vector<double> A{-1.0, -2.0}, dA{3.0, 0.5};
  std::vector<double> da_log{10.0, 20.0};
  ml::cpu::a_log_backward<double>(A.data(), dA.data(), da_log.data(), 2);
  EXPECT(da_log[0] == 7.0 && da_log[1] == 19.0, "got ", da_log[0], ", ", da_log[1]);
  return "adds dA·A to what is there";
}
