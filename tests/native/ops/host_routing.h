// A routing decision's arrays on the host, and the ml::Routing view that route_forward fills.
#pragma once
#include <cstdint>
#include <vector>

#include "ops/router/router.h"

namespace mltest {

struct HostRouting {
  HostRouting(int64_t tokens, int64_t experts, int64_t top_k)
      : expert(top_k * tokens), rank(top_k * tokens), kept(top_k * tokens), counts(experts), first_counts(experts) {
    r.expert = expert.data(), r.rank = rank.data(), r.kept = kept.data(), r.counts = counts.data();
    r.first_counts = first_counts.data(), r.dropped = &dropped, r.aux_loss = &aux_loss;
  }
  std::vector<int32_t> expert, rank;
  std::vector<uint8_t> kept;
  std::vector<int64_t> counts, first_counts;
  int64_t dropped = 0;
  double aux_loss = 0;
  ml::Routing r;
};

}  // namespace mltest
