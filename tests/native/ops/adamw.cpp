#include "ops/adamw/adamw.h"

#include "../harness.h"

using namespace mltest;

// After one step, m̂ = g and v̂ = g², so the update is p(1 − lr·wd) − lr·g/(|g| + eps).
NATIVE_TEST(adamw_first_step_has_the_closed_form) {
  const std::vector<double> g = {0.5, -2.0, 1e-3};
  std::vector<double> p = {1.0, -1.0, 0.25}, m(3, 0.0), v(3, 0.0);
  const ml::cpu::AdamWParams hp{0.01, 0.9, 0.95, 1e-8, 0.1, 1};
  const std::vector<double> before = p;
  ml::cpu::adamw_update<double>(hp, p.data(), g.data(), m.data(), v.data(), 3);
  for (int i = 0; i < 3; ++i) {
    const double want = before[i] * (1 - 0.01 * 0.1) - 0.01 * g[i] / (std::abs(g[i]) + 1e-8);
    EXPECT(std::abs(p[i] - want) < 1e-15, "element ", i, " got ", p[i], " want ", want);
  }
  return "p1 = p0(1 − lr·wd) − lr·sign(g)";
}

// Ten steps against the update written with bias-corrected moments.
NATIVE_TEST(adamw_matches_bias_corrected_adam_over_steps) {
  ml::Rng rng(61);
  double p = 0.3, m = 0, v = 0;
  double ours = p, om = 0, ov = 0;
  const double lr = 3e-3, b1 = 0.9, b2 = 0.95, eps = 1e-8, wd = 0.1;
  for (int t = 1; t <= 10; ++t) {
    const double g = rng.uniform(-1, 1);
    m = b1 * m + (1 - b1) * g;
    v = b2 * v + (1 - b2) * g * g;
    const double mhat = m / (1 - std::pow(b1, t)), vhat = v / (1 - std::pow(b2, t));
    p = p - lr * wd * p - lr * mhat / (std::sqrt(vhat) + eps);
    ml::cpu::adamw_update<double>({lr, b1, b2, eps, wd, t}, &ours, &g, &om, &ov, 1);
  }
  EXPECT(std::abs(ours - p) < 1e-12, "got ", ours, " want ", p);
  return "10 steps agree";
}
