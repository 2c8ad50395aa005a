#include "ops/argmax/argmax.h"

#include "../harness.h"

using namespace mltest;

// Rows with their maximum in the middle, at the end, tied (the lower index wins) and all
// equal; the values past n in each row (ld > n) are larger and must not be read.
NATIVE_TEST(argmax_picks_the_largest_value_ties_to_the_lower_index) {
  const int64_t n = 5, ld = 7;
  const std::vector<double> x = {
      1, 4, 2, 3, -1, 99, 99,      // 1
      -5, -4, -3, -2, -1, 99, 99,  // 4
      0, 7, 2, 7, 1, 99, 99,       // 1 (tie with 3)
      3, 3, 3, 3, 3, 99, 99,       // 0
  };
  std::vector<int32_t> out(4, -1);
  ml::cpu::argmax<double>(x.data(), 4, n, ld, out.data());
  const std::vector<int32_t> want = {1, 4, 1, 0};
  if (out != want) throw Failure(str("got ", out[0], " ", out[1], " ", out[2], " ", out[3]));
  return "1 4 1 0";
}
