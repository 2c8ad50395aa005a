#include "ops/rope/rope.h"

#include <cmath>

#include "../harness.h"

using namespace mltest;

// The rotation keeps norms, is the identity at position 0, its backward is its transpose, and
// ⟨rope_t(q), rope_s(k)⟩ depends on t − s only: the property attention relies on.
NATIVE_TEST(rope_rotates_by_position_and_its_backward_is_the_transpose) {
  const ml::cpu::RopeDims d{2, 9, 3, 8};
  ml::Rng rng(151);
  const int64_t n = d.batch * d.len * d.heads * d.dim;
  const auto x = random_vector(rng, n), y = random_vector(rng, n);
  std::vector<double> rx(n), ry(n);
  ml::cpu::rope_forward<double>(d, 10000.0, x.data(), rx.data());
  ml::cpu::rope_backward<double>(d, 10000.0, y.data(), ry.data());
  EXPECT(std::abs(dot(rx, y) - dot(x, ry)) < 1e-12, "⟨rope x, y⟩ ", dot(rx, y), " vs ⟨x, ropeᵀ y⟩ ", dot(x, ry));
  EXPECT(std::abs(dot(rx, rx) - dot(x, x)) < 1e-12, "norm changed");
  for (int64_t e = 0; e < d.heads * d.dim; ++e) EXPECT(rx[e] == x[e], "position 0 moved element ", e);
  std::vector<double> back(n);
  ml::cpu::rope_backward<double>(d, 10000.0, rx.data(), back.data());
  for (int64_t e = 0; e < n; ++e) EXPECT(std::abs(back[e] - x[e]) < 1e-14, "backward does not undo forward at ", e);

  // One vector at every position of a sequence: scores of (t, s) pairs with equal t − s agree.
  const ml::cpu::RopeDims one{1, 9, 1, 8};
  const auto q0 = random_vector(rng, 8), k0 = random_vector(rng, 8);
  std::vector<double> qs(9 * 8), ks(9 * 8), rq(9 * 8), rk(9 * 8);
  for (int64_t t = 0; t < 9; ++t)
    for (int64_t e = 0; e < 8; ++e) qs[t * 8 + e] = q0[e], ks[t * 8 + e] = k0[e];
  ml::cpu::rope_forward<double>(one, 10000.0, qs.data(), rq.data());
  ml::cpu::rope_forward<double>(one, 10000.0, ks.data(), rk.data());
  auto score = [&](int64_t t, int64_t s) {
    double sum = 0;
    for (int64_t e = 0; e < 8; ++e) sum += rq[t * 8 + e] * rk[s * 8 + e];
    return sum;
  };
  EXPECT(std::abs(score(5, 2) - score(7, 4)) < 1e-12 && std::abs(score(3, 3) - score(8, 8)) < 1e-12,
         "scores depend on more than the offset");
  return "transpose, norm, identity at 0, inverse, relative positions";
}

// With offsets, sequence b's row t is rotated as row offsets[b] + t of a longer sequence.
NATIVE_TEST(rope_offsets_place_each_sequence_at_its_position) {
  ml::Rng rng(153);
  const int64_t heads = 2, dim = 6, len = 10;
  const auto x = random_vector(rng, len * heads * dim);
  std::vector<double> whole(x.size());
  ml::cpu::rope_forward<double>({1, len, heads, dim}, 500.0, x.data(), whole.data());
  // Two one-token sequences at positions 3 and 8.
  const std::vector<int32_t> offsets{3, 8};
  std::vector<double> pair(2 * heads * dim), rotated(pair.size());
  std::copy_n(x.begin() + 3 * heads * dim, heads * dim, pair.begin());
  std::copy_n(x.begin() + 8 * heads * dim, heads * dim, pair.begin() + heads * dim);
  ml::cpu::rope_forward<double>({2, 1, heads, dim, offsets.data()}, 500.0, pair.data(), rotated.data());
  for (int64_t e = 0; e < heads * dim; ++e) {
    EXPECT(rotated[e] == whole[3 * heads * dim + e], "position 3, element ", e);
    EXPECT(rotated[heads * dim + e] == whole[8 * heads * dim + e], "position 8, element ", e);
  }
  return "offset rows equal the long sequence's rows";
}
