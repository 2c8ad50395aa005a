#include "core/fast_exp.h"

#include "../harness.h"

using namespace mltest;

NATIVE_TEST(fast_exp_is_within_two_ulp_of_exp) {
  Worst worst("relative error", 2.4e-7);  // 2 ulp of float at 1.0 is 2.4e-7
  for (float x = -87.0f; x < 88.0f; x += 0.000731f) {
    const double want = std::exp(double(x));
    worst.add(str("x=", x), std::abs(double(ml::fast_exp(x)) - want) / want);
  }
  EXPECT(ml::fast_exp(0.0f) == 1.0f, "e^0 = ", ml::fast_exp(0.0f));
  EXPECT(ml::fast_exp(-1000.0f) >= 0.0f && ml::fast_exp(-1000.0f) < 1.3e-38f, "clamped low end");
  EXPECT(std::isfinite(ml::fast_exp(1000.0f)), "clamped high end stays finite");
  EXPECT(std::isnan(ml::fast_exp(NAN)), "NaN stays NaN");
  return worst.report() + " over [−87, 88]";
}
