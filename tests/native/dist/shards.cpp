// ZeRO-1's shares (dist/shards.h): contiguous ranges in rank order that cover every element once,
// start on 64-element boundaries and differ by at most 64 elements.
#include "dist/shards.h"

#include <algorithm>

#include "../harness.h"

using namespace mltest;

NATIVE_TEST(shard_bounds_are_equal_aligned_ranges) {
  EXPECT((ml::shard_bounds(64 * 5, 4) == std::vector<int64_t>{0, 128, 192, 256, 320}), "5 units over 4 ranks");
  EXPECT((ml::shard_bounds(64, 3) == std::vector<int64_t>{0, 64, 64, 64}), "fewer units than ranks: empty shares");
  int cases = 0;
  for (const int64_t total : {int64_t{0}, int64_t{64}, int64_t{64 * 7}, int64_t{64 * 1000}, int64_t{64 * 12345}})
    for (int world = 1; world <= 8; ++world, ++cases) {
      const auto b = ml::shard_bounds(total, world);
      EXPECT(b.size() == size_t(world) + 1 && b.front() == 0 && b.back() == total, total, " over ", world);
      int64_t least = total, most = 0;
      for (int r = 0; r < world; ++r) {
        const int64_t share = b[size_t(r) + 1] - b[size_t(r)];
        EXPECT(share >= 0 && b[size_t(r)] % 64 == 0, total, " over ", world, ": rank ", r, " at ", b[size_t(r)]);
        least = std::min(least, share), most = std::max(most, share);
      }
      EXPECT(most - least <= 64, total, " over ", world, ": shares from ", least, " to ", most);
    }
  std::string error;
  try {
    ml::shard_bounds(100, 2);
  } catch (const ml::Error& e) {
    error = e.what();
  }
  EXPECT(error.find("100 elements do not split into 2 shares of 64-element units") != std::string::npos, error);
  return str(cases, " totals x worlds: contiguous, aligned, within 64 elements of each other");
}
