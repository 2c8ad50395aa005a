// Seeded random numbers. Every draw is reproducible from (seed, stream): parameters get
// their own stream so that adding a parameter does not shift the others' initial values.
#pragma once
#include <cmath>
#include <cstdint>

namespace ml {

class Rng {
 public:
  Rng(uint64_t seed, uint64_t stream = 0) : state_(mix(seed ^ mix(stream + 0x632be59bd9b4e019ULL))) {}

  uint64_t next_u64() { return mix(state_ += 0x9e3779b97f4a7c15ULL); }

  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }

  // Standard normal by Box-Muller; the second value is discarded to keep the stream simple.
  double normal() {
    double u1 = uniform();
    while (u1 <= 0.0) u1 = uniform();
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

 private:
  // splitmix64 finaliser
  static uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  uint64_t state_;
};

}  // namespace ml
