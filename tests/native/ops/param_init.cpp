#include "ops/param_init/param_init.h"

#include <cmath>

#include "../harness.h"

using namespace mltest;

namespace {

std::vector<double> draw(const ml::ParamInit& init, const std::string& name, int64_t n, uint64_t seed = 5) {
  std::vector<double> v(n);
  ml::cpu::param_init<double>(init, seed, name, v.data(), n);
  return v;
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / double(v.size());
}

}  // namespace

NATIVE_TEST(param_init_draws_each_recipe_with_its_distribution) {
  const int64_t n = 200000;
  const auto u = draw(ml::ParamInit::uniform(0.3), "u", n);
  double lo = 1, hi = -1, var = 0;
  for (double x : u) lo = std::min(lo, x), hi = std::max(hi, x), var += x * x;
  EXPECT(lo >= -0.3 && hi < 0.3 && lo < -0.299 && hi > 0.299, "U(±0.3) spans [", lo, ", ", hi, "]");
  EXPECT(std::abs(var / n - 0.03) < 0.001, "uniform variance ", var / n, " vs b²/3 = 0.03");

  const auto g = draw(ml::ParamInit::normal(0.02), "g", n);
  double sq = 0, fourth = 0;
  for (double x : g) sq += x * x, fourth += std::pow(x / 0.02, 4);
  EXPECT(std::abs(mean(g)) < 3 * 0.02 / std::sqrt(double(n)) * 2, "normal mean ", mean(g));
  EXPECT(std::abs(std::sqrt(sq / n) - 0.02) < 0.0003, "normal std ", std::sqrt(sq / n));
  EXPECT(std::abs(fourth / n - 3) < 0.1, "normal kurtosis ", fourth / n);

  const auto dt = draw(ml::ParamInit::dt_bias(0.001, 0.1, 1e-4), "dt", 4096);
  for (double b : dt) {
    const double softplus = std::log1p(std::exp(b));
    EXPECT(softplus >= 0.001 * (1 - 1e-9) && softplus <= 0.1 * (1 + 1e-9), "softplus(bias) ", softplus);
  }
  const auto a = draw(ml::ParamInit::s4d_real(16), "a", 64);
  for (int64_t i = 0; i < 64; ++i) EXPECT(a[i] == std::log(double(1 + i % 16)), "A_log[", i, "] ", a[i]);
  EXPECT(draw(ml::ParamInit::constant(1.0), "c", 3) == std::vector<double>({1, 1, 1}), "constant");
  return str("uniform range and variance, normal std ", std::sqrt(sq / n), ", dt range, S4D-real, constant");
}

// Each element depends on (seed, name, index) alone: a longer tensor extends a shorter one,
// other names and seeds give other values, and float values are the double values rounded.
NATIVE_TEST(param_init_values_depend_on_seed_name_and_index_only) {
  const auto init = ml::ParamInit::normal(1.0);
  const auto short_draw = draw(init, "w", 10), long_draw = draw(init, "w", 1000);
  for (int64_t i = 0; i < 10; ++i) EXPECT(short_draw[i] == long_draw[i], "element ", i, " moved");
  EXPECT(draw(init, "w", 10, 6) != short_draw && draw(init, "v", 10) != short_draw, "seed and name change values");
  std::vector<float> f(1000);
  ml::cpu::param_init<float>(init, 5, "w", f.data(), 1000);
  for (int64_t i = 0; i < 1000; ++i) EXPECT(f[i] == float(long_draw[i]), "float element ", i);
  return "prefix-stable, seeded per name, float = rounded double";
}

// A part drawn alone (an expert-parallel rank's block of the experts: from element `first` on)
// is that part of the whole tensor, for every recipe (S4D-real's index modulo N included).
NATIVE_TEST(param_init_draws_a_part_as_the_whole_tensor_has_it) {
  for (const auto& init : {ml::ParamInit::normal(1.0), ml::ParamInit::uniform(0.5), ml::ParamInit::s4d_real(16),
                           ml::ParamInit::dt_bias(0.001, 0.1, 1e-4)}) {
    const auto whole = draw(init, "w", 1000);
    std::vector<double> part(300);
    ml::cpu::param_init<double>(init, 5, "w", part.data(), 300, 613);
    for (int64_t i = 0; i < 300; ++i) EXPECT(part[i] == whole[613 + i], "element ", 613 + i, " drawn from 613 on");
  }
  return "normal, uniform, S4D-real, dt_bias: elements [613, 913) alone equal the whole tensor's";
}
