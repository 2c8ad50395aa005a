// log, exp, expm1 and cos(2πt) in double, written with +, −, ×, ÷, sqrt, fma and exact scaling
// only: each step is correctly rounded by IEEE 754 on the host and on the GPU alike, so both
// compute the same bits (glibc's and CUDA's libm may differ by an ulp). Parameter
// initialisation needs that: the GPU must draw exactly the CPU's weights. Accurate to a few
// ulp. Compile callers without FMA contraction (-ffp-contract=off, nvcc --fmad=false): a
// contracted a·b + c rounds once where the other side would round twice.
#pragma once
#include <math.h>

#include "host_device.h"

namespace ml::portable {

// 1/k!, k ≤ 22 (k! is exact in double up to 22!); folded to constants where k is known.
ML_HD constexpr double inv_factorial(int k) {
  double f = 1.0;
  for (int i = 2; i <= k; ++i) f *= double(i);
  return 1.0 / f;
}

// ln 2 split so that k · ln2_hi is exact for |k| < 2¹¹ (fdlibm's constants); 2π likewise.
constexpr double kLn2Hi = 6.93147180369123816490e-01;
constexpr double kLn2Lo = 1.90821492927058770002e-10;
constexpr double kInvLn2 = 1.44269504088896338700e+00;
constexpr double kSqrtHalf = 0.70710678118654752440;
constexpr double kTwoPiHi = 6.28318530717958623200e+00;
constexpr double kTwoPiLo = 2.44929359829470635445e-16;

// Natural logarithm of a positive, finite x.
ML_HD inline double log(double x) {
  int e = 0;
  double m = ::frexp(x, &e);  // x = m · 2^e, m in [½, 1)
  if (m < kSqrtHalf) {
    m = m * 2.0;  // exact
    e -= 1;
  }
  // log m = 2 atanh(f), f = (m − 1)/(m + 1), |f| ≤ 0.172: the odd series to f²³ is below 2⁻⁵³.
  const double f = (m - 1.0) / (m + 1.0);
  const double s = f * f;
  double p = 2.0 / 23.0;
  for (int k = 21; k >= 1; k -= 2) p = ::fma(p, s, 2.0 / double(k));
  const double log_m = f * p;
  return ::fma(double(e), kLn2Hi, ::fma(double(e), kLn2Lo, log_m));
}

// e^x for |x| < 700.
ML_HD inline double exp(double x) {
  const double k = ::rint(x * kInvLn2);
  const double r = ::fma(-k, kLn2Lo, ::fma(-k, kLn2Hi, x));  // |r| ≤ 0.35: Taylor to r¹³
  double p = inv_factorial(13);
  for (int n = 12; n >= 1; --n) p = ::fma(p, r, inv_factorial(n));
  return ::ldexp(::fma(p, r, 1.0), int(k));
}

// e^x − 1 without cancellation for small |x|.
ML_HD inline double expm1(double x) {
  if (::fabs(x) > 0.5) return exp(x) - 1.0;
  // x · Σ x^k/(k+1)! for k ≤ 18: the remainder is below 2⁻⁵³ for |x| ≤ ½.
  double p = inv_factorial(19);
  for (int k = 17; k >= 0; --k) p = ::fma(p, x, inv_factorial(k + 1));
  return x * p;
}

namespace detail {

// cos and sin of 2π·t for t in [0, ⅛] (x ≤ π/4): Taylor to x¹⁸ and x¹⁹.
ML_HD inline double cos_small(double t) {
  const double x = ::fma(t, kTwoPiHi, t * kTwoPiLo), s = x * x;
  double p = inv_factorial(18);
  for (int k = 8; k >= 0; --k) p = ::fma(p, -s, inv_factorial(2 * k));
  return p;
}

ML_HD inline double sin_small(double t) {
  const double x = ::fma(t, kTwoPiHi, t * kTwoPiLo), s = x * x;
  double p = inv_factorial(19);
  for (int k = 8; k >= 0; --k) p = ::fma(p, -s, inv_factorial(2 * k + 1));
  return x * p;
}

}  // namespace detail

// cos(2π·t) for finite t. The reductions below are exact subtractions (Sterbenz).
ML_HD inline double cos_turns(double t) {
  double r = ::fabs(t - ::rint(t));  // [0, ½]
  double sign = 1.0;
  if (r > 0.25) {
    r = 0.5 - r;  // cos 2πr = −cos 2π(½ − r)
    sign = -1.0;
  }
  return sign * (r > 0.125 ? detail::sin_small(0.25 - r) : detail::cos_small(r));
}

}  // namespace ml::portable
