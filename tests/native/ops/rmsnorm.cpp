#include "ops/rmsnorm/rmsnorm.h"

#include "../harness.h"

using namespace mltest;

NATIVE_TEST(rmsnorm_with_residual_backward_matches_finite_differences) {
  ml::Rng rng(21);
  const int64_t rows = 29, dim = 33;
  auto x = random_vector(rng, rows * dim), res = random_vector(rng, rows * dim), w = random_vector(rng, dim, 0.5, 1.5);
  auto dy = random_vector(rng, rows * dim), dres_out = random_vector(rng, rows * dim);
  std::vector<double> r(rows * dim), y(rows * dim), rstd(rows), dx(rows * dim), dw(dim, 0.0);
  // Loss sees both outputs: the normalised rows and the residual stream itself.
  auto loss = [&] {
    ml::cpu::rmsnorm_forward<double>(x.data(), res.data(), w.data(), r.data(), y.data(), rstd.data(), rows, dim, 1e-5);
    return dot(y, dy) + dot(r, dres_out);
  };
  loss();
  ml::cpu::rmsnorm_backward<double>(r.data(), rstd.data(), w.data(), dy.data(), dres_out.data(), dx.data(), dw.data(),
                                    rows, dim);
  // r = x + residual, so both inputs share the gradient dx.
  return check_gradients(loss, {{"x", &x, &dx}, {"residual", &res, &dx}, {"weight", &w, &dw}}, rng);
}

NATIVE_TEST(rmsnorm_without_residual_backward_matches_finite_differences) {
  ml::Rng rng(22);
  const int64_t rows = 3, dim = 64;
  auto x = random_vector(rng, rows * dim, -3, 3), w = random_vector(rng, dim), dy = random_vector(rng, rows * dim);
  std::vector<double> r(rows * dim), y(rows * dim), rstd(rows), dx(rows * dim), dw(dim, 0.0);
  auto loss = [&] {
    ml::cpu::rmsnorm_forward<double>(x.data(), nullptr, w.data(), r.data(), y.data(), rstd.data(), rows, dim, 1e-5);
    return dot(y, dy);
  };
  loss();
  ml::cpu::rmsnorm_backward<double>(r.data(), rstd.data(), w.data(), dy.data(), nullptr, dx.data(), dw.data(), rows,
                                    dim);
  return check_gradients(loss, {{"x", &x, &dx}, {"weight", &w, &dw}}, rng);
}
