// Causal attention on the device against the fp64 CPU reference on the same rounded inputs:
// out, lse, dq, dk, dv; multi-head, grouped-query and multi-query heads, head sizes 8 to 128,
// lengths within one tile, across many tiles and not a multiple of the tile, one token, one
// sequence; bf16 head 64 through both tensor-core paths (warpgroup MMA on Hopper builds,
// mma.sync); two runs bit-identical.
#include <cstdlib>

#include "gpu/gpu_test.h"
#include "ops/attention/attention.h"

using namespace gputest;

namespace {

template <typename T>
struct AttentionRun {
  std::vector<double> out, lse, dq, dk, dv;
  std::vector<unsigned char> bytes;
};

template <typename T>
AttentionRun<T> run_gpu(const ml::cpu::AttentionDims& d, const std::vector<double>& q, const std::vector<double>& k,
                        const std::vector<double>& v, const std::vector<double>& dout) {
  Dev<T> gq(q), gk(k), gv(v), gdout(dout), gout(int64_t(q.size())), gdq(int64_t(q.size()));
  Dev<T> gdk(int64_t(k.size())), gdv(int64_t(v.size()));
  Dev<float> glse(d.batch * d.heads * d.len);
  for (auto* g : {&gout, &gdq, &gdk, &gdv}) g->poison();
  glse.poison();
  ml::cuda::attention_forward<T>(d, gq.get(), gk.get(), gv.get(), gout.get(), glse.get(), nullptr);
  ml::cuda::attention_backward<T>(d, gq.get(), gk.get(), gv.get(), gout.get(), glse.get(), gdout.get(), gdq.get(),
                                  gdk.get(), gdv.get(), nullptr);
  sync("attention");
  AttentionRun<T> r{gout.download(), glse.download(), gdq.download(), gdk.download(), gdv.download(), {}};
  for (const auto& part : {gout.bytes(), glse.bytes(), gdq.bytes(), gdk.bytes(), gdv.bytes()})
    r.bytes.insert(r.bytes.end(), part.begin(), part.end());
  return r;
}

template <typename T>
std::string check_attention(ml::cpu::AttentionDims d, uint64_t seed) {
  ml::Rng rng(seed);
  const int64_t nq = d.batch * d.len * d.heads * d.head_dim, nkv = d.batch * d.len * d.kv_heads * d.head_dim;
  const auto q = rounded<T>(uniform(rng, nq, -2, 2)), k = rounded<T>(uniform(rng, nkv, -2, 2));
  const auto v = rounded<T>(uniform(rng, nkv)), dout = rounded<T>(uniform(rng, nq));
  std::vector<double> out(nq), lse(d.batch * d.heads * d.len), dq(nq), dk(nkv), dv(nkv);
  ml::cpu::attention_forward<double>(d, q.data(), k.data(), v.data(), out.data(), lse.data());
  // The backward from the device's (rounded) output, as the device's backward sees it.
  const auto out_t = rounded<T>(out);
  ml::cpu::attention_backward<double>(d, q.data(), k.data(), v.data(), out_t.data(), lse.data(), dout.data(),
                                      dq.data(), dk.data(), dv.data());
  const auto got = run_gpu<T>(d, q, k, v, dout);
  Errors errors(bound<T>());
  errors.add("out", got.out, out);
  errors.add("lse", got.lse, lse);
  errors.add("dq", got.dq, dq);
  errors.add("dk", got.dk, dk);
  errors.add("dv", got.dv, dv);
  return errors.report();
}

}  // namespace

NATIVE_TEST(cuda_attention_fp32_multi_head) { return check_attention<float>({2, 77, 4, 4, 64}, 1001); }
NATIVE_TEST(cuda_attention_fp32_grouped_query) { return check_attention<float>({2, 130, 8, 2, 32}, 1002); }
NATIVE_TEST(cuda_attention_fp32_multi_query_head_128) { return check_attention<float>({1, 45, 4, 1, 128}, 1003); }
NATIVE_TEST(cuda_attention_fp32_odd_head_size) { return check_attention<float>({3, 33, 2, 2, 40}, 1004); }
NATIVE_TEST(cuda_attention_fp32_one_token) { return check_attention<float>({2, 1, 4, 2, 16}, 1005); }
NATIVE_TEST(cuda_attention_fp32_long) { return check_attention<float>({1, 513, 2, 1, 64}, 1006); }
NATIVE_TEST(cuda_attention_bf16_multi_head) { return check_attention<bf16>({2, 77, 4, 4, 64}, 1007); }
NATIVE_TEST(cuda_attention_bf16_grouped_query_long) { return check_attention<bf16>({1, 300, 8, 2, 64}, 1008); }
NATIVE_TEST(cuda_attention_bf16_many_query_blocks_ragged) { return check_attention<bf16>({2, 1000, 4, 1, 64}, 1011); }
NATIVE_TEST(cuda_attention_bf16_mma_sync) {
  struct MmaSync {  // switched back even when the check throws
    MmaSync() { setenv("MAMBALAB_WGMMA_ATTENTION", "0", 1); }
    ~MmaSync() { unsetenv("MAMBALAB_WGMMA_ATTENTION"); }
  } mma_sync;
  return check_attention<bf16>({1, 300, 8, 2, 64}, 1012);
}
NATIVE_TEST(cuda_attention_bf16_one_sequence_one_token) { return check_attention<bf16>({1, 1, 1, 1, 8}, 1009); }
template <typename T>
std::string check_deterministic(const ml::cpu::AttentionDims& d, uint64_t seed) {
  ml::Rng rng(seed);
  const int64_t nq = d.batch * d.len * d.heads * d.head_dim, nkv = d.batch * d.len * d.kv_heads * d.head_dim;
  const auto q = rounded<T>(uniform(rng, nq)), k = rounded<T>(uniform(rng, nkv));
  const auto v = rounded<T>(uniform(rng, nkv)), dout = rounded<T>(uniform(rng, nq));
  const auto a = run_gpu<T>(d, q, k, v, dout), b = run_gpu<T>(d, q, k, v, dout);
  EXPECT(a.bytes == b.bytes, "two runs differ");
  return mltest::str(a.bytes.size(), " bytes of out, lse, dq, dk, dv identical");
}
NATIVE_TEST(cuda_attention_fp32_deterministic) { return check_deterministic<float>({2, 200, 4, 2, 64}, 1010); }
NATIVE_TEST(cuda_attention_bf16_deterministic) { return check_deterministic<bf16>({2, 300, 4, 2, 64}, 1013); }
