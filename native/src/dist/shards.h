// Optimizer state sharding (ZeRO-1): which elements of a model's flat parameter buffers
// (nn/params.h: every tensor in declaration order, each padded to 64 elements) each rank
// updates and keeps AdamW moments for. Element ranges rather than whole tensors, so the shares
// are equal whatever the tensors' sizes (an embedding can be most of a model): rank r holds
// [bounds[r], bounds[r+1]), contiguous, in rank order, the shares differing by at most `unit`
// elements. Boundaries fall on multiples of `unit`, so each share starts 256-byte aligned (fp32)
// as the tensors do. AdamW is elementwise: where a boundary cuts a tensor, each part is updated
// as the whole tensor would have been.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "../core/error.h"

namespace ml {

// world + 1 offsets from 0 to total; total must be a multiple of unit.
inline std::vector<int64_t> shard_bounds(int64_t total, int world, int64_t unit = 64) {
  ML_CHECK(world >= 1 && unit >= 1 && total >= 0 && total % unit == 0, "shard_bounds: ", total,
           " elements do not split into ", world, " shares of ", unit, "-element units");
  const int64_t units = total / unit, each = units / world, extra = units % world;
  std::vector<int64_t> bounds(size_t(world) + 1);
  for (int r = 0; r <= world; ++r) bounds[size_t(r)] = unit * (int64_t(r) * each + std::min<int64_t>(r, extra));
  return bounds;
}

}  // namespace ml
