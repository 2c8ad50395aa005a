#include "ops/layernorm/layernorm.h"

#include <cmath>

#include "../harness.h"

using namespace mltest;

NATIVE_TEST(layernorm_with_residual_backward_matches_finite_differences) {
  ml::Rng rng(23);
  const int64_t rows = 29, dim = 33;
  auto x = random_vector(rng, rows * dim), res = random_vector(rng, rows * dim), w = random_vector(rng, dim, 0.5, 1.5);
  auto b = random_vector(rng, dim), dy = random_vector(rng, rows * dim), dres_out = random_vector(rng, rows * dim);
  std::vector<double> r(rows * dim), y(rows * dim), mean(rows), rstd(rows), dx(rows * dim), dw(dim, 0.0), db(dim, 0.0);
  // Loss sees both outputs: the normalised rows and the residual stream itself.
  auto loss = [&] {
    ml::cpu::layernorm_forward<double>(x.data(), res.data(), w.data(), b.data(), r.data(), y.data(), mean.data(),
                                       rstd.data(), rows, dim, 1e-5);
    return dot(y, dy) + dot(r, dres_out);
  };
  loss();
  ml::cpu::layernorm_backward<double>(r.data(), mean.data(), rstd.data(), w.data(), dy.data(), dres_out.data(),
                                      dx.data(), dw.data(), db.data(), rows, dim);
  // r = x + residual, so both inputs share the gradient dx.
  return check_gradients(loss, {{"x", &x, &dx}, {"residual", &res, &dx}, {"weight", &w, &dw}, {"bias", &b, &db}}, rng);
}

NATIVE_TEST(layernorm_without_residual_backward_matches_finite_differences) {
  ml::Rng rng(24);
  const int64_t rows = 3, dim = 64;
  auto x = random_vector(rng, rows * dim, -3, 3), w = random_vector(rng, dim), b = random_vector(rng, dim);
  auto dy = random_vector(rng, rows * dim);
  std::vector<double> r(rows * dim), y(rows * dim), mean(rows), rstd(rows), dx(rows * dim), dw(dim, 0.0), db(dim, 0.0);
  auto loss = [&] {
    ml::cpu::layernorm_forward<double>(x.data(), nullptr, w.data(), b.data(), r.data(), y.data(), mean.data(),
                                       rstd.data(), rows, dim, 1e-5);
    return dot(y, dy);
  };
  loss();
  ml::cpu::layernorm_backward<double>(r.data(), mean.data(), rstd.data(), w.data(), dy.data(), nullptr, dx.data(),
                                      dw.data(), db.data(), rows, dim);
  return check_gradients(loss, {{"x", &x, &dx}, {"weight", &w, &dw}, {"bias", &b, &db}}, rng);
}

// The forward against its definition, written out: torch.nn.LayerNorm's output.
NATIVE_TEST(layernorm_forward_matches_its_definition) {
  ml::Rng rng(25);
  const int64_t rows = 4, dim = 17;
  auto x = random_vector(rng, rows * dim, -3, 3), w = random_vector(rng, dim), b = random_vector(rng, dim);
  std::vector<double> r(rows * dim), y(rows * dim), mean(rows), rstd(rows);
  ml::cpu::layernorm_forward<double>(x.data(), nullptr, w.data(), b.data(), r.data(), y.data(), mean.data(),
                                     rstd.data(), rows, dim, 1e-5);
  Worst worst("|y − definition|", 1e-12);
  for (int64_t i = 0; i < rows; ++i) {
    double mu = 0, var = 0;
    for (int64_t j = 0; j < dim; ++j) mu += x[i * dim + j] / dim;
    for (int64_t j = 0; j < dim; ++j) var += (x[i * dim + j] - mu) * (x[i * dim + j] - mu) / dim;
    for (int64_t j = 0; j < dim; ++j) {
      const double expected = (x[i * dim + j] - mu) / std::sqrt(var + 1e-5) * w[j] + b[j];
      worst.add(str("row ", i, " column ", j), std::abs(y[i * dim + j] - expected));
    }
  }
  return worst.report();
}
