// Both routers against ml::cpu::route_forward / route_backward (fp64 on the same rounded
// logits): experts, kept, ranks, counts, dropped, capacity and first choices identical; probs,
// gates, aux loss and dlogits within the bound.
#include <cmath>
#include <cstdint>

#include "gpu/gpu_test.h"
#include "ops/router/router.h"

using namespace gputest;

namespace {

template <typename V>
std::vector<V> download_raw(const Dev<V>& d) {
  std::vector<V> out(size_t(d.size()));
  check(cudaMemcpy(out.data(), d.get(), out.size() * sizeof(V), cudaMemcpyDeviceToHost), "download");
  return out;
}

// ties: logits on a coarse integer grid, so that many tie (the lower index must win).
struct Kind {
  ml::cpu::RouterKind router = ml::cpu::RouterKind::Switch;
  bool training = true;
  int64_t sinkhorn_max_iter = 100;
};
constexpr Kind kSinkhornTraining{ml::cpu::RouterKind::Sinkhorn, true};
constexpr Kind kSinkhornInference{ml::cpu::RouterKind::Sinkhorn, false};

template <typename T>
std::string check_router(int64_t tokens, int64_t experts, int64_t top_k, double capacity_factor, double aux_weight,
                         uint64_t seed, bool ties = false, Kind kind = {}) {
  ml::Rng rng(seed);
  auto raw = uniform(rng, tokens * experts, -3, 3);
  if (ties)
    for (auto& v : raw) v = std::round(v);
  const auto logits = rounded<T>(raw);
  const auto dgates = rounded<T>(uniform(rng, top_k * tokens));
  ml::cpu::RouterOptions o;
  o.top_k = top_k;
  o.capacity_factor = capacity_factor;
  o.aux_weight = aux_weight;
  o.kind = kind.router;
  o.training = kind.training;
  o.sinkhorn_max_iter = kind.sinkhorn_max_iter;
  std::vector<double> probs(tokens * experts), gates(top_k * tokens), dlogits(tokens * experts);
  ml::cpu::Routing want;
  ml::cpu::route_forward<double>(o, logits.data(), tokens, experts, probs.data(), gates.data(), want);
  ml::cpu::route_backward<double>(o, logits.data(), probs.data(), want, dgates.data(), dlogits.data());

  Dev<T> glogits(logits), gdgates(dgates), gprobs(tokens * experts), ggates(top_k * tokens),
      gdlogits(tokens * experts);
  Dev<int32_t> gexpert(top_k * tokens);
  Dev<uint8_t> gkept(top_k * tokens);
  Dev<int32_t> grank(top_k * tokens);
  Dev<int64_t> gcounts(experts), gfirst(experts), gdropped(1);
  Dev<double> gaux(1);
  for (auto* p : {&gprobs, &ggates, &gdlogits}) p->poison();
  gexpert.poison();
  grank.poison();
  check(cudaMemset(gkept.get(), 0xff, size_t(gkept.size())), "poison");
  gcounts.poison();
  gfirst.poison();
  gdropped.poison();
  gaux.poison();
  ml::cuda::DeviceRouting r;
  r.expert = gexpert.get(), r.kept = gkept.get(), r.rank = grank.get();
  r.counts = gcounts.get(), r.first_counts = gfirst.get();
  r.dropped = gdropped.get(), r.aux_loss = gaux.get();
  ml::cuda::route_forward<T>(o, glogits.get(), tokens, experts, gprobs.get(), ggates.get(), r, nullptr);
  ml::cuda::route_backward<T>(o, gprobs.get(), r, gdgates.get(), gdlogits.get(), nullptr);
  sync("router");

  EXPECT(r.capacity == want.capacity, r.capacity, " vs ", want.capacity);
  const auto expert = download_raw(gexpert);
  const auto kept = download_raw(gkept);
  const auto rank = download_raw(grank);
  std::vector<int32_t> seen(experts, 0);  // assignments so far per expert, in order a
  const auto counts = download_raw(gcounts);
  const auto first = download_raw(gfirst);
  const int64_t dropped = download_raw(gdropped)[0];
  const double aux = download_raw(gaux)[0];
  for (int64_t a = 0; a < top_k * tokens; ++a) {
    EXPECT(expert[a] == want.expert[a], "assignment ", a, ": expert ", expert[a], " vs ", want.expert[a]);
    EXPECT(kept[a] == want.kept[a], "assignment ", a, ": kept ", int(kept[a]), " vs ", int(want.kept[a]));
    const int32_t want_rank = seen[want.expert[a]]++;
    EXPECT(rank[a] == want_rank, "assignment ", a, ": rank ", rank[a], " vs ", want_rank);
  }
  for (int64_t e = 0; e < experts; ++e) {
    EXPECT(counts[e] == want.counts[e], "expert ", e, ": count ", counts[e], " vs ", want.counts[e]);
    const double f = double(first[e]) / double(tokens);
    EXPECT(std::abs(f - want.first_choice_fraction[e]) < 1e-9, "expert ", e, ": f ", f, " vs ",
           want.first_choice_fraction[e]);
  }
  EXPECT(dropped == want.dropped, "dropped ", dropped, " vs ", want.dropped);
  Errors errors(bound<T>());
  errors.add("probs", gprobs.download(), probs);
  errors.add("gates", ggates.download(), gates);
  errors.add("aux", {aux}, {want.aux_loss});
  errors.add("dlogits", gdlogits.download(), dlogits);
  return errors.report() + " dropped " + mltest::str(dropped) + "/" + mltest::str(top_k * tokens);
}

}  // namespace

NATIVE_TEST(cuda_router_fp32_top2_64_experts) { return check_router<float>(4097, 64, 2, 1.25, 0.01, 231); }
NATIVE_TEST(cuda_router_fp32_top1_8_experts) { return check_router<float>(3001, 8, 1, 1.0, 0.01, 232); }
NATIVE_TEST(cuda_router_fp32_heavy_drops) { return check_router<float>(1333, 5, 2, 0.5, 0.01, 233); }
NATIVE_TEST(cuda_router_fp32_dropless_no_aux) { return check_router<float>(2051, 33, 2, 0.0, 0.0, 234); }
NATIVE_TEST(cuda_router_fp32_one_expert) { return check_router<float>(777, 1, 1, 1.0, 0.01, 235); }
NATIVE_TEST(cuda_router_fp32_one_token) { return check_router<float>(1, 7, 2, 1.0, 0.01, 236); }
NATIVE_TEST(cuda_router_fp32_one_token_one_expert) { return check_router<float>(1, 1, 1, 1.0, 0.01, 237); }
NATIVE_TEST(cuda_router_fp32_top3_ties) { return check_router<float>(2500, 17, 3, 1.0, 0.01, 238, true); }
NATIVE_TEST(cuda_router_fp32_top2_two_experts) { return check_router<float>(1025, 2, 2, 1.0, 0.01, 239); }
NATIVE_TEST(cuda_router_bf16_top2_64_experts) { return check_router<bf16>(3000, 64, 2, 1.0, 0.01, 240); }
NATIVE_TEST(cuda_router_bf16_top1_ties) { return check_router<bf16>(999, 16, 1, 1.0, 0.01, 241, true); }
NATIVE_TEST(cuda_router_fp32_sinkhorn_training_top1) {
  return check_router<float>(3001, 8, 1, 1.0, 0.01, 242, false, kSinkhornTraining);
}
NATIVE_TEST(cuda_router_fp32_sinkhorn_training_top2_dropless) {
  return check_router<float>(2049, 16, 2, 0.0, 0.0, 243, false, kSinkhornTraining);
}
// Many blocks per balancing step (the last-block reduction over partials) and drops.
NATIVE_TEST(cuda_router_fp32_sinkhorn_training_many_tokens) {
  return check_router<float>(20000, 8, 1, 1.0, 0.0, 244, false, kSinkhornTraining);
}
// No iterations: the initialised scales alone decide.
NATIVE_TEST(cuda_router_fp32_sinkhorn_no_iterations) {
  return check_router<float>(999, 8, 1, 1.0, 0.0, 245, false, {ml::cpu::RouterKind::Sinkhorn, true, 0});
}
NATIVE_TEST(cuda_router_fp32_sinkhorn_one_token) {
  return check_router<float>(1, 4, 1, 1.0, 0.0, 246, false, kSinkhornTraining);
}
NATIVE_TEST(cuda_router_fp32_sinkhorn_inference_top2) {
  return check_router<float>(1777, 8, 2, 1.0, 0.0, 247, false, kSinkhornInference);
}
NATIVE_TEST(cuda_router_bf16_sinkhorn_training_top1) {
  return check_router<bf16>(3000, 8, 1, 1.0, 0.0, 248, false, kSinkhornTraining);
}
