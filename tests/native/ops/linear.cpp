#include "ops/linear/linear.h"

#include "../harness.h"

using namespace mltest;

NATIVE_TEST(linear_backward_matches_finite_differences) {
  ml::Rng rng(3);
  const int64_t rows = 37, in = 19, out = 23;
  auto x = random_vector(rng, rows * in), w = random_vector(rng, out * in), b = random_vector(rng, out);
  auto dy = random_vector(rng, rows * out);
  std::vector<double> y(rows * out), dx(rows * in), dw(out * in, 0.0), db(out, 0.0);
  auto loss = [&] {
    ml::cpu::linear_forward<double>(x.data(), w.data(), b.data(), y.data(), rows, in, out);
    return dot(y, dy);
  };
  ml::cpu::linear_backward<double>(x.data(), w.data(), dy.data(), dx.data(), dw.data(), db.data(), rows, in, out);
  return check_gradients(loss, {{"x", &x, &dx}, {"weight", &w, &dw}, {"bias", &b, &db}}, rng);
}

NATIVE_TEST(linear_backward_accumulates_into_dx_when_asked) {
  ml::Rng rng(4);
  const int64_t rows = 4, in = 3, out = 2;
  auto x = random_vector(rng, rows * in), w = random_vector(rng, out * in), dy = random_vector(rng, rows * out);
  std::vector<double> fresh(rows * in), summed(rows * in, 1.0), dw(out * in, 0.0);
  ml::cpu::linear_backward<double>(x.data(), w.data(), dy.data(), fresh.data(), dw.data(), nullptr, rows, in, out);
  ml::cpu::linear_backward<double>(x.data(), w.data(), dy.data(), summed.data(), dw.data(), nullptr, rows, in, out,
                                   true);
  for (size_t i = 0; i < fresh.size(); ++i) EXPECT(std::abs(summed[i] - (fresh[i] + 1.0)) < 1e-12, "element ", i);
  return "dx += dy·W";
}
