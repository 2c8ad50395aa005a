#include "ops/attention_decode/attention_decode.h"

#include <cmath>

#include "../harness.h"
#include "ops/attention/attention.h"

using namespace mltest;

namespace {

// Decoding each position of two sequences, one started later (its own position), equals
// the causal attention's row at that position.
std::string check_decode(int64_t heads, int64_t kv_heads, int64_t dh, uint64_t seed) {
  ml::Rng rng(seed);
  const int64_t batch = 2, len = 7, capacity = 9, qd = heads * dh, kvd = kv_heads * dh;
  const auto q = random_vector(rng, batch * len * qd), k = random_vector(rng, batch * len * kvd);
  const auto v = random_vector(rng, batch * len * kvd);
  std::vector<double> want(q.size()), lse(batch * heads * len);
  ml::cpu::attention_forward<double>({batch, len, heads, kv_heads, dh}, q.data(), k.data(), v.data(), want.data(),
                                     lse.data());
  std::vector<double> k_cache(batch * capacity * kvd, NAN), v_cache(batch * capacity * kvd, NAN);
  Worst err("relative error", 1e-13);
  for (int64_t t = 0; t < len; ++t) {
    const std::vector<int32_t> positions{int32_t(t), int32_t(t)};
    std::vector<double> qt(batch * qd), kt(batch * kvd), vt(batch * kvd), out(batch * qd);
    for (int64_t r = 0; r < batch; ++r) {
      std::copy_n(q.begin() + (r * len + t) * qd, qd, qt.begin() + r * qd);
      std::copy_n(k.begin() + (r * len + t) * kvd, kvd, kt.begin() + r * kvd);
      std::copy_n(v.begin() + (r * len + t) * kvd, kvd, vt.begin() + r * kvd);
    }
    ml::cpu::attention_decode<double>({batch, capacity, heads, kv_heads, dh}, qt.data(), kt.data(), vt.data(),
                                      k_cache.data(), v_cache.data(), positions.data(), out.data());
    for (int64_t r = 0; r < batch; ++r)
      for (int64_t e = 0; e < qd; ++e) {
        const double w = want[(r * len + t) * qd + e];
        err.add(str("position ", t, " row ", r, " element ", e), std::abs(out[r * qd + e] - w) / std::max(1.0, std::abs(w)));
      }
  }
  return err.report();
}

}  // namespace

NATIVE_TEST(attention_decode_equals_the_causal_attention_row) {
  return check_decode(4, 4, 8, 61) + "; grouped " + check_decode(4, 2, 6, 62) + "; multi-query " +
         check_decode(3, 1, 4, 63);
}

NATIVE_TEST(attention_decode_refuses_a_position_outside_the_cache) {
  std::vector<double> q(4), k(4), v(4), kc(8), vc(8), out(4);
  const std::vector<int32_t> positions{2};
  try {
    ml::cpu::attention_decode<double>({1, 2, 1, 1, 4}, q.data(), k.data(), v.data(), kc.data(), vc.data(),
                                      positions.data(), out.data());
  } catch (const std::exception& e) {
    EXPECT(std::string(e.what()).find("outside the cache of 2") != std::string::npos, e.what());
    return e.what();
  }
  throw Failure("position 2 of a cache of 2 was accepted");
}
