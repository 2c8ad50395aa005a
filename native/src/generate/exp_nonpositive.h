// e^x for x ≤ 0 in a form that loops vectorise (libm's exp is a scalar call), within
// kExpNonpositiveError of std::exp relative, and below 1e-300 absolute where x < -708 (clamped
// there, so that 2^k stays a normal double). The sampler sums the whole vocabulary's
// probabilities with it, to bound the sum that it does not take in order (sampling.cpp).
//   e^x = 2^k · e^r, k = round(x / ln 2), r = x − k·ln 2 with ln 2 in two parts (k·ln2_hi exact),
//   |r| ≤ 0.35; e^r by its Taylor series to r¹³ (remainder < 1e-17). That is a few ulp from
//   e^x, and std::exp is within one: the bound leaves a wide margin (tests/native/generate).
#pragma once
#include <cstdint>

#include "../core/portable_math.h"

namespace ml {

constexpr double kExpNonpositiveError = 1e-13;

inline double exp_nonpositive(double x) {
  using namespace portable;
  constexpr double c[14] = {inv_factorial(0),  inv_factorial(1),  inv_factorial(2), inv_factorial(3), inv_factorial(4),
                            inv_factorial(5),  inv_factorial(6),  inv_factorial(7), inv_factorial(8), inv_factorial(9),
                            inv_factorial(10), inv_factorial(11), inv_factorial(12), inv_factorial(13)};
  x = x < -708.0 ? -708.0 : x;
  const double k = (x * kInvLn2 + 0x1.8p52) - 0x1.8p52;  // round to nearest, |x / ln 2| < 2^51
  const double r = (x - k * kLn2Hi) - k * kLn2Lo;
  double p = c[13];
#pragma GCC unroll 16
  for (int n = 12; n >= 0; --n) p = p * r + c[n];
  return p * __builtin_bit_cast(double, (int64_t(k) + 1023) << 52);  // · 2^k from its exponent bits
}

}  // namespace ml
