// Seeded random numbers. Every draw is reproducible from (seed, stream): parameters get
// their own stream so that adding a parameter does not shift the others' initial values.
// The sequence is counter-based (splitmix64 of a Weyl sequence), so draw k can be computed on
// its own: rng_draw lets a GPU thread make element k without the draws before it.
#pragma once
#include <cstdint>

#include "host_device.h"
#include "portable_math.h"

namespace ml {

// splitmix64 finaliser
ML_HD inline uint64_t rng_mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Where the sequence of (seed, stream) starts.
ML_HD inline uint64_t rng_start(uint64_t seed, uint64_t stream) {
  return rng_mix(seed ^ rng_mix(stream + 0x632be59bd9b4e019ULL));
}

// Draw k (from 0) of the sequence that starts at `start`.
ML_HD inline uint64_t rng_draw(uint64_t start, uint64_t k) { return rng_mix(start + (k + 1) * 0x9e3779b97f4a7c15ULL); }

// Uniform in [0, 1) with the 53 high bits of a draw.
ML_HD inline double rng_unit(uint64_t bits) { return double(bits >> 11) * 0x1.0p-53; }

// A standard normal from two draws by Box–Muller (the second value unused). u1 is in (0, 1],
// so its logarithm is finite; portable math makes the value the same on the host and the GPU.
ML_HD inline double rng_normal(uint64_t bits1, uint64_t bits2) {
  const double u1 = (double(bits1 >> 11) + 1.0) * 0x1.0p-53;
  return ::sqrt(-2.0 * portable::log(u1)) * portable::cos_turns(rng_unit(bits2));
}

class Rng {
 public:
  Rng(uint64_t seed, uint64_t stream = 0) : start_(rng_start(seed, stream)) {}

  uint64_t next_u64() { return rng_draw(start_, drawn_++); }

  double uniform() { return rng_unit(next_u64()); }

  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }

  double normal() {
    const uint64_t first = next_u64();
    return rng_normal(first, next_u64());
  }

 private:
  uint64_t start_;
  uint64_t drawn_ = 0;
};

}  // namespace ml
