#include "gpu/gpu_test.h"
#include "ops/attention_decode/attention_decode.h"

using namespace gputest;

namespace {

// A cache filled to different lengths per sequence (one nearly full), then one decode step:
// the output and the appended cache rows against the fp64 CPU.
template <typename T>
std::string check_decode(ml::cpu::AttentionDecodeDims d, std::vector<int32_t> positions, uint64_t seed) {
  ml::Rng rng(seed);
  const int64_t qn = d.batch * d.heads * d.head_dim, kvn = d.batch * d.kv_heads * d.head_dim;
  const int64_t cache = d.batch * d.capacity * d.kv_heads * d.head_dim;
  const auto q = rounded<T>(uniform(rng, qn)), k = rounded<T>(uniform(rng, kvn)), v = rounded<T>(uniform(rng, kvn));
  auto k_cache = rounded<T>(uniform(rng, cache)), v_cache = rounded<T>(uniform(rng, cache));
  std::vector<double> out(qn);
  Dev<T> gq(q), gk(k), gv(v), gk_cache(k_cache), gv_cache(v_cache), gout(qn);
  Dev<int32_t> gpositions(std::vector<double>(positions.begin(), positions.end()));
  ml::cpu::attention_decode<double>(d, q.data(), k.data(), v.data(), k_cache.data(), v_cache.data(), positions.data(),
                                    out.data());
  gout.poison();
  Dev<float> scratch(std::max<int64_t>(1, ml::cuda::attention_decode_scratch(d)));
  scratch.poison();  // spans that see no key must not read what they did not write
  ml::cuda::attention_decode<T>(d, gq.get(), gk.get(), gv.get(), gk_cache.get(), gv_cache.get(), gpositions.get(),
                                gout.get(), scratch.get(), nullptr);
  sync("attention_decode");
  Errors errors(bound<T>());
  errors.add("out", gout.download(), out);
  errors.add("k_cache", gk_cache.download(), k_cache);
  errors.add("v_cache", gv_cache.download(), v_cache);
  return mltest::str("cache ", d.capacity, " (", ml::cuda::attention_decode_scratch(d) > 0 ? "split" : "one block per head",
                     "): ", errors.report());
}

}  // namespace

NATIVE_TEST(cuda_attention_decode_fp32_matches_cpu) {
  return check_decode<float>({3, 300, 8, 2, 64}, {0, 17, 299}, 1301) + "; " +
         check_decode<float>({1, 40, 4, 1, 128}, {39}, 1302) + "; " + check_decode<float>({2, 9, 2, 2, 40}, {3, 8}, 1303);
}
NATIVE_TEST(cuda_attention_decode_bf16_matches_cpu) {
  return check_decode<bf16>({2, 2100, 16, 4, 64}, {2047, 5}, 1311);
}
// Long caches split into spans: sequences that fill a few spans or all of them, a last span
// that is partly past the cache's end, every span count up to the cap, head_dim 128 and odd.
NATIVE_TEST(cuda_attention_decode_split_cache_matches_cpu) {
  return check_decode<float>({2, 9000, 8, 2, 64}, {8999, 130}, 1321) + "; " +
         check_decode<float>({3, 1000, 4, 4, 128}, {0, 999, 511}, 1322) + "; " +
         check_decode<bf16>({1, 8320, 16, 16, 64}, {8191}, 1323) + "; " +
         check_decode<bf16>({2, 300, 6, 3, 40}, {255, 256}, 1324);
}
