// exp for float32 that compilers vectorise (libm's expf is a scalar call): e^x = 2^n · e^r
// with n = round(x / ln 2) and |r| ≤ ln2/2, e^r by its Taylor series to degree 7
// (truncation < 6e-9, under float's half-ulp): relative error ≤ 2 ulp. Inputs are clamped
// to [−87.3, 88.3] so that 2^n stays a normal float; NaN stays NaN. Branch-free, so loops
// over it vectorise. float64 keeps std::exp (gradient checks run there).
#pragma once
#include <cmath>
#include <cstdint>

namespace ml {

inline float fast_exp(float x) {
  x = x > 88.3f ? 88.3f : x;
  x = x < -87.3f ? -87.3f : x;
  // Round to nearest by adding and subtracting 1.5·2^23 (exact for |x/ln2| < 2^22).
  const float n = (x * 1.44269504f + 12582912.0f) - 12582912.0f;
  // r = x − n·ln2, with ln2 split in two parts so the product is exact to float precision.
  const float r = (x - n * 0.693145752f) - n * 1.42860677e-6f;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  return p * __builtin_bit_cast(float, bits);  // 2^n from its exponent bits
}

inline double fast_exp(double x) { return std::exp(x); }

}  // namespace ml
