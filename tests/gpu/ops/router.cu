// Both routers against ml::cpu::route_forward / route_backward (fp64 on the same rounded
// logits): experts, kept, ranks, counts, dropped, capacity and first choices identical; probs,
// gates, aux loss and dlogits within the bound. route_choices against cpu's the same way, and
// against the device's route_forward in a decode step's configuration bit for bit.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "core/cuda_graph.h"
#include "gpu/gpu_test.h"
#include "native/ops/host_routing.h"
#include "ops/router/router.h"

using namespace gputest;

namespace {

// The device outputs of one route_forward, poisoned so that an element never written fails.
template <typename T>
struct GpuRouting {
  Dev<T> probs, gates;
  Dev<int32_t> expert, rank;
  Dev<uint8_t> kept;
  Dev<int64_t> counts, first, dropped;
  Dev<double> aux;
  ml::Routing r;

  GpuRouting(int64_t tokens, int64_t experts, int64_t top_k)
      : probs(tokens * experts), gates(top_k * tokens), expert(top_k * tokens), rank(top_k * tokens),
        kept(top_k * tokens), counts(experts), first(experts), dropped(1), aux(1) {
    probs.poison();
    gates.poison();
    expert.poison();
    rank.poison();
    kept.poison();
    counts.poison();
    first.poison();
    dropped.poison();
    aux.poison();
    r.expert = expert.get(), r.kept = kept.get(), r.rank = rank.get();
    r.counts = counts.get(), r.first_counts = first.get();
    r.dropped = dropped.get(), r.aux_loss = aux.get();
  }
};

// ties: logits on a coarse integer grid, so that many tie (the lower index must win).
struct Kind {
  ml::RouterKind router = ml::RouterKind::Switch;
  bool training = true;
  int64_t sinkhorn_max_iter = 100;
  double sinkhorn_tol = 1e-4;
};
constexpr Kind kSinkhornTraining{ml::RouterKind::Sinkhorn, true};
constexpr Kind kSinkhornInference{ml::RouterKind::Sinkhorn, false};

template <typename T>
std::string check_router(int64_t tokens, int64_t experts, int64_t top_k, double capacity_factor, double aux_weight,
                         uint64_t seed, bool ties = false, Kind kind = {}) {
  ml::Rng rng(seed);
  auto raw = uniform(rng, tokens * experts, -3, 3);
  if (ties)
    for (auto& v : raw) v = std::round(v);
  const auto logits = rounded<T>(raw);
  const auto dgates = rounded<T>(uniform(rng, top_k * tokens));
  ml::RouterOptions o;
  o.top_k = top_k;
  o.capacity_factor = capacity_factor;
  o.aux_weight = aux_weight;
  o.kind = kind.router;
  o.training = kind.training;
  o.sinkhorn_max_iter = kind.sinkhorn_max_iter;
  o.sinkhorn_tol = kind.sinkhorn_tol;
  std::vector<double> probs(tokens * experts), gates(top_k * tokens), dlogits(tokens * experts);
  mltest::HostRouting want(tokens, experts, top_k);
  ml::cpu::route_forward<double>(o, logits.data(), tokens, experts, probs.data(), gates.data(), want.r);
  ml::cpu::route_backward<double>(o, probs.data(), want.r, dgates.data(), dlogits.data());

  Dev<T> glogits(logits), gdgates(dgates), gdlogits(tokens * experts);
  gdlogits.poison();
  GpuRouting<T> g(tokens, experts, top_k);
  ml::cuda::route_forward<T>(o, glogits.get(), tokens, experts, g.probs.get(), g.gates.get(), g.r, nullptr);
  ml::cuda::route_backward<T>(o, g.probs.get(), g.r, gdgates.get(), gdlogits.get(), nullptr);
  sync("router");

  EXPECT(g.r.capacity == want.r.capacity, g.r.capacity, " vs ", want.r.capacity);
  const auto expert = download_raw(g.expert);
  const auto kept = download_raw(g.kept);
  const auto rank = download_raw(g.rank);
  const auto counts = download_raw(g.counts);
  const auto first = download_raw(g.first);
  const int64_t dropped = download_raw(g.dropped)[0];
  const double aux = download_raw(g.aux)[0];
  for (int64_t a = 0; a < top_k * tokens; ++a) {
    EXPECT(expert[a] == want.expert[a], "assignment ", a, ": expert ", expert[a], " vs ", want.expert[a]);
    EXPECT(kept[a] == want.kept[a], "assignment ", a, ": kept ", int(kept[a]), " vs ", int(want.kept[a]));
    EXPECT(rank[a] == want.rank[a], "assignment ", a, ": rank ", rank[a], " vs ", want.rank[a]);
  }
  for (int64_t e = 0; e < experts; ++e) {
    EXPECT(counts[e] == want.counts[e], "expert ", e, ": count ", counts[e], " vs ", want.counts[e]);
    EXPECT(first[e] == want.first_counts[e], "expert ", e, ": first choices ", first[e], " vs ", want.first_counts[e]);
  }
  EXPECT(dropped == want.dropped, "dropped ", dropped, " vs ", want.dropped);
  Errors errors(bound<T>());
  errors.add("probs", g.probs.download(), probs);
  errors.add("gates", g.gates.download(), gates);
  errors.add("aux", {aux}, {want.aux_loss});
  errors.add("dlogits", gdlogits.download(), dlogits);
  return errors.report() + " dropped " + mltest::str(dropped) + "/" + mltest::str(top_k * tokens);
}

// Two Sinkhorn routings of the same logits (tied on an integer grid, so that the balanced
// scores' order hangs on the column scales) give the same bits in every output.
std::string check_sinkhorn_deterministic(int64_t tokens, int64_t experts, int64_t top_k, uint64_t seed) {
  ml::Rng rng(seed);
  auto raw = uniform(rng, tokens * experts, -3, 3);
  for (auto& v : raw) v = std::round(v);
  Dev<float> glogits(rounded<float>(raw));
  ml::RouterOptions o;
  o.kind = ml::RouterKind::Sinkhorn;
  o.top_k = top_k;
  GpuRouting<float> first(tokens, experts, top_k), second(tokens, experts, top_k);
  for (auto* g : {&first, &second})
    ml::cuda::route_forward<float>(o, glogits.get(), tokens, experts, g->probs.get(), g->gates.get(), g->r, nullptr);
  sync("router");
  auto outputs = [](const GpuRouting<float>& g) {
    std::vector<unsigned char> all;
    for (const auto& part : {g.probs.bytes(), g.gates.bytes(), g.expert.bytes(), g.rank.bytes(), g.kept.bytes(),
                             g.counts.bytes(), g.first.bytes(), g.dropped.bytes()})
      all.insert(all.end(), part.begin(), part.end());
    return all;
  };
  const auto a = outputs(first), b = outputs(second);
  EXPECT(a == b, "the outputs differ between two runs");
  return mltest::str(a.size(), " output bytes identical across two runs");
}

// route_choices on `tokens` rows of logits (integers when `ties`): against cpu::route_choices
// in fp64 (experts identical, probs and gates within the bound); against route_forward as a
// decode step used it (inference, capacity factor E / top_k), probs, gates and experts the same
// bits and every assignment kept; and replayed from a CUDA graph, the same bits again.
template <typename T>
std::string check_choices(int64_t tokens, int64_t experts, int64_t top_k, ml::RouterKind kind, uint64_t seed,
                          bool ties = false) {
  ml::Rng rng(seed);
  auto raw = uniform(rng, tokens * experts, -3, 3);
  if (ties)
    for (auto& v : raw) v = std::round(v);
  const auto logits = rounded<T>(raw);
  ml::RouterOptions o;
  o.kind = kind, o.top_k = top_k;
  std::vector<double> probs(tokens * experts), gates(top_k * tokens);
  std::vector<int32_t> want_expert(top_k * tokens);
  ml::cpu::route_choices<double>(o, logits.data(), tokens, experts, probs.data(), gates.data(), want_expert.data());

  Dev<T> glogits(logits), gprobs(tokens * experts), ggates(top_k * tokens);
  Dev<int32_t> gexpert(top_k * tokens);
  for (auto* out : {&gprobs, &ggates}) out->poison();
  gexpert.poison();
  ml::cuda::route_choices<T>(o, glogits.get(), tokens, experts, gprobs.get(), ggates.get(), gexpert.get(), nullptr);
  ml::RouterOptions decode = o;
  decode.training = false, decode.capacity_factor = double(experts) / double(top_k);
  GpuRouting<T> g(tokens, experts, top_k);
  ml::cuda::route_forward<T>(decode, glogits.get(), tokens, experts, g.probs.get(), g.gates.get(), g.r, nullptr);
  sync("route_choices");

  const auto expert = download_raw(gexpert);
  for (int64_t a = 0; a < top_k * tokens; ++a)
    EXPECT(expert[a] == want_expert[a], "assignment ", a, ": expert ", expert[a], " vs ", want_expert[a]);
  Errors errors(bound<T>());
  errors.add("probs", gprobs.download(), probs);
  errors.add("gates", ggates.download(), gates);
  const auto kept = download_raw(g.kept);
  EXPECT(std::count(kept.begin(), kept.end(), uint8_t(1)) == top_k * tokens, "route_forward dropped assignments");
  EXPECT(gprobs.bytes() == g.probs.bytes(), "probs differ from route_forward's");
  EXPECT(ggates.bytes() == g.gates.bytes(), "gates differ from route_forward's");
  EXPECT(gexpert.bytes() == g.expert.bytes(), "experts differ from route_forward's");

  cudaStream_t stream = nullptr;
  check(cudaStreamCreate(&stream), "cudaStreamCreate");
  for (auto* out : {&gprobs, &ggates}) out->poison();
  gexpert.poison();
  sync("poison");
  const auto graph = ml::cuda::CudaGraph::capture(stream, [&] {
    ml::cuda::route_choices<T>(o, glogits.get(), tokens, experts, gprobs.get(), ggates.get(), gexpert.get(), stream);
  });
  if (graph) graph.launch(stream);
  check(cudaStreamSynchronize(stream), "graph replay");
  check(cudaStreamDestroy(stream), "cudaStreamDestroy");
  EXPECT(bool(graph), "route_choices could not be captured");
  EXPECT(gprobs.bytes() == g.probs.bytes() && ggates.bytes() == g.gates.bytes() && gexpert.bytes() == g.expert.bytes(),
         "the graph's replay differs from route_forward's");
  return errors.report() + "; bit for bit route_forward's, eager and replayed";
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
  return check_router<float>(999, 8, 1, 1.0, 0.0, 245, false, {ml::RouterKind::Sinkhorn, true, 0});
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
// Several tokens per thread in a tile (more than 128 × 256 tokens), top 2 and drops.
NATIVE_TEST(cuda_router_fp32_sinkhorn_training_tiles_of_several_rows) {
  return check_router<float>(70001, 8, 2, 1.0, 0.0, 249, false, kSinkhornTraining);
}
// More experts than one chunk of column sums: the row scales are kept for the later chunks.
NATIVE_TEST(cuda_router_fp32_sinkhorn_training_many_experts) {
  return check_router<float>(3001, 70, 2, 0.0, 0.0, 250, false, kSinkhornTraining);
}
// A tolerance never met: every one of max_iter iterations runs.
NATIVE_TEST(cuda_router_fp32_sinkhorn_max_iter_reached) {
  return check_router<float>(5000, 8, 1, 1.0, 0.0, 251, false, {ml::RouterKind::Sinkhorn, true, 37, 0.0});
}
// A tolerance always met: the first iteration ends the balancing.
NATIVE_TEST(cuda_router_fp32_sinkhorn_converged_at_first_iteration) {
  return check_router<float>(5000, 8, 1, 1.0, 0.0, 252, false, {ml::RouterKind::Sinkhorn, true, 100, 1e9});
}
NATIVE_TEST(cuda_router_fp32_sinkhorn_deterministic) { return check_sinkhorn_deterministic(50000, 16, 2, 253); }
// A decode step's routing: batch 1 and a few rows; past one block of warps; ties.
NATIVE_TEST(cuda_route_choices_fp32_switch_top1) {
  return check_choices<float>(1, 8, 1, ml::RouterKind::Switch, 254) + "; " +
         check_choices<float>(37, 32, 1, ml::RouterKind::Switch, 255, true);
}
NATIVE_TEST(cuda_route_choices_fp32_switch_top2) {
  return check_choices<float>(1, 16, 2, ml::RouterKind::Switch, 256) + "; " +
         check_choices<float>(19, 64, 2, ml::RouterKind::Switch, 257, true);
}
NATIVE_TEST(cuda_route_choices_fp32_sinkhorn) {  // BlackMamba's: 8 experts, top-1
  return check_choices<float>(1, 8, 1, ml::RouterKind::Sinkhorn, 258) + "; " +
         check_choices<float>(23, 8, 1, ml::RouterKind::Sinkhorn, 259, true);
}
NATIVE_TEST(cuda_route_choices_bf16) {
  return check_choices<bf16>(1, 8, 1, ml::RouterKind::Switch, 260) + "; " +
         check_choices<bf16>(17, 16, 2, ml::RouterKind::Switch, 261, true) + "; " +
         check_choices<bf16>(9, 8, 1, ml::RouterKind::Sinkhorn, 262, true);
}
