#include "ops/attention/attention.h"

#include "../harness.h"

using namespace mltest;

namespace {

struct AttentionCase {
  ml::cpu::AttentionDims d;
  std::vector<double> q, k, v;

  AttentionCase(ml::cpu::AttentionDims dims, ml::Rng& rng) : d(dims) {
    q = random_vector(rng, d.batch * d.len * d.heads * d.head_dim);
    k = random_vector(rng, d.batch * d.len * d.kv_heads * d.head_dim);
    v = random_vector(rng, d.batch * d.len * d.kv_heads * d.head_dim);
  }
  std::vector<double> forward(std::vector<double>* lse = nullptr) const {
    std::vector<double> out(q.size()), l(d.batch * d.heads * d.len);
    ml::cpu::attention_forward<double>(d, q.data(), k.data(), v.data(), out.data(), l.data());
    if (lse) *lse = l;
    return out;
  }
};

std::string check_attention(ml::cpu::AttentionDims dims, uint64_t seed) {
  ml::Rng rng(seed);
  AttentionCase c(dims, rng);
  const auto dout = random_vector(rng, c.q.size());
  std::vector<double> lse;
  const auto out = c.forward(&lse);
  std::vector<double> dq(c.q.size()), dk(c.k.size()), dv(c.v.size());
  ml::cpu::attention_backward<double>(dims, c.q.data(), c.k.data(), c.v.data(), out.data(), lse.data(), dout.data(),
                                      dq.data(), dk.data(), dv.data());
  return check_gradients([&] { return dot(c.forward(), dout); }, {{"q", &c.q, &dq}, {"k", &c.k, &dk}, {"v", &c.v, &dv}},
                         rng);
}

}  // namespace

NATIVE_TEST(attention_backward_matches_finite_differences) {
  return check_attention({2, 7, 4, 4, 5}, 141) + "; GQA: " + check_attention({2, 9, 6, 2, 4}, 142) +
         "; MQA, one token: " + check_attention({3, 1, 4, 1, 3}, 143);
}

// Position i sees positions up to i only: changing the last key and value moves only the last output.
NATIVE_TEST(attention_is_causal) {
  ml::Rng rng(144);
  AttentionCase c({1, 6, 2, 1, 4}, rng);
  const auto before = c.forward();
  for (int64_t e = 0; e < 4; ++e) c.k[5 * 4 + e] += 1.0, c.v[5 * 4 + e] -= 2.0;
  const auto after = c.forward();
  const int64_t row = 2 * 4;  // heads · head_dim
  for (size_t x = 0; x < before.size(); ++x)
    EXPECT((before[x] == after[x]) == (int64_t(x) < 5 * row), "element ", x, " (position ", int64_t(x) / row, ")");
  return "outputs before the changed position unchanged, the last one changed";
}

// Grouped-query heads read their group's key and value: the same as plain multi-head attention
// with each kv head repeated for its queries.
NATIVE_TEST(attention_grouped_query_equals_repeated_kv_heads) {
  ml::Rng rng(145);
  const ml::cpu::AttentionDims gqa{2, 5, 6, 2, 3};
  AttentionCase c(gqa, rng);
  AttentionCase full({2, 5, 6, 6, 3}, rng);
  full.q = c.q;
  for (int64_t t = 0; t < 2 * 5; ++t)
    for (int64_t h = 0; h < 6; ++h)
      for (int64_t e = 0; e < 3; ++e) {
        full.k[(t * 6 + h) * 3 + e] = c.k[(t * 2 + h / 3) * 3 + e];
        full.v[(t * 6 + h) * 3 + e] = c.v[(t * 2 + h / 3) * 3 + e];
      }
  const auto a = c.forward(), b = full.forward();
  for (size_t x = 0; x < a.size(); ++x) EXPECT(std::abs(a[x] - b[x]) < 1e-15, "element ", x, ": ", a[x], " vs ", b[x]);
  return "6 heads over 2 kv heads = 6 heads over 6 repeated ones";
}
