#include "ops/conv1d/conv1d.h"

#include "../harness.h"

using namespace mltest;

namespace {

std::string check_conv(int64_t batch, int64_t len, int64_t dim, bool silu, uint64_t seed) {
  ml::Rng rng(seed);
  const ml::cpu::Conv1dDims d{batch, len, dim, 4};
  const int64_t n = batch * len * dim;
  auto x = random_vector(rng, n, -2, 2), w = random_vector(rng, dim * 4), b = random_vector(rng, dim);
  auto dy = random_vector(rng, n);
  std::vector<double> y(n), dx(n), dw(dim * 4, 0.0), db(dim, 0.0);
  auto loss = [&] {
    ml::cpu::conv1d_forward<double>(d, x.data(), w.data(), b.data(), y.data(), silu);
    return dot(y, dy);
  };
  ml::cpu::conv1d_backward<double>(d, x.data(), w.data(), b.data(), dy.data(), dx.data(), dw.data(), db.data(), silu);
  return check_gradients(loss, {{"x", &x, &dx}, {"weight", &w, &dw}, {"bias", &b, &db}}, rng);
}

}  // namespace

NATIVE_TEST(conv1d_silu_backward_matches_finite_differences) { return check_conv(2, 11, 24, true, 31); }
NATIVE_TEST(conv1d_linear_backward_matches_finite_differences) { return check_conv(3, 9, 5, false, 32); }
NATIVE_TEST(conv1d_shorter_than_kernel_backward_matches_finite_differences) {
  return check_conv(1, 1, 3, true, 33) + "; " + check_conv(2, 2, 7, true, 34);
}

NATIVE_TEST(conv1d_is_causal) {
  ml::Rng rng(35);
  const ml::cpu::Conv1dDims d{1, 10, 4, 4};
  auto x = random_vector(rng, 40), w = random_vector(rng, 16), b = random_vector(rng, 4);
  std::vector<double> y1(40), y2(40);
  ml::cpu::conv1d_forward<double>(d, x.data(), w.data(), b.data(), y1.data(), true);
  for (int64_t i = 6 * 4; i < 40; ++i) x[i] += 1.0;  // change the future from t = 6 on
  ml::cpu::conv1d_forward<double>(d, x.data(), w.data(), b.data(), y2.data(), true);
  for (int64_t i = 0; i < 6 * 4; ++i) EXPECT(y1[i] == y2[i], "output ", i, " saw a later input");
  return "outputs before t depend only on inputs up to t";
}
