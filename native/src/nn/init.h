// Parameter initialisers, each drawing from its own seeded stream (see core/rng.h).
#pragma once
#include <cstdint>
#include <string>

#include "../core/rng.h"
#include "param.h"

namespace ml {

inline uint64_t name_stream(const std::string& name) {
  uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a
  for (unsigned char c : name) h = (h ^ c) * 0x100000001b3ULL;
  return h;
}

template <typename T>
void init_uniform(Param<T>& p, uint64_t seed, double bound) {
  Rng rng(seed, name_stream(p.name));
  T* v = p.value.data();
  for (int64_t i = 0; i < p.value.numel(); ++i) v[i] = T(rng.uniform(-bound, bound));
}

template <typename T>
void init_normal(Param<T>& p, uint64_t seed, double std) {
  Rng rng(seed, name_stream(p.name));
  T* v = p.value.data();
  for (int64_t i = 0; i < p.value.numel(); ++i) v[i] = T(std * rng.normal());
}

template <typename T>
void init_constant(Param<T>& p, double value) {
  p.value.fill(T(value));
}

}  // namespace ml
