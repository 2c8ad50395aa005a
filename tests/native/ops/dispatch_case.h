// A random routing for the moe_dispatch tests (CPU and GPU).
#pragma once
#include <cstdint>
#include <vector>

#include "core/rng.h"

namespace mltest {

// A routing of `tokens` tokens, top_k choices each, to `experts` experts, with the ranks the
// router gives (position among the expert's assignments in order a) and those over
// `capacity` dropped.
struct Dispatch {
  int64_t tokens, top_k, experts, capacity;
  std::vector<int32_t> expert, rank;
  std::vector<uint8_t> kept;
  std::vector<int64_t> counts;

  Dispatch(ml::Rng& rng, int64_t tokens_, int64_t top_k_, int64_t experts_, int64_t capacity_)
      : tokens(tokens_), top_k(top_k_), experts(experts_), capacity(capacity_), expert(top_k * tokens),
        rank(top_k * tokens), kept(top_k * tokens), counts(experts, 0) {
    std::vector<int64_t> seen(experts, 0);
    for (int64_t a = 0; a < top_k * tokens; ++a) {
      expert[a] = int32_t(rng.next_u64() % uint64_t(experts));
      rank[a] = int32_t(seen[expert[a]]++);
      kept[a] = rank[a] < capacity;
      counts[expert[a]] += kept[a];
    }
  }
  int64_t assignments() const { return top_k * tokens; }
};

}  // namespace mltest
