// The dispatch ops on the device against the CPU reference (fp64 on the same rounded values):
// slots and sources identical, capacity and dropless (segment offsets) layouts, gather with
// and without gates, combine, gate gradients; fp32 and bf16.
#include "gpu/gpu_test.h"
#include "native/ops/dispatch_case.h"
#include "ops/moe_dispatch/moe_dispatch.h"

using namespace gputest;

namespace {

template <typename V>
std::vector<double> widen(const std::vector<V>& v) {
  return {v.begin(), v.end()};
}

template <typename T>
std::string check_dispatch(int64_t tokens, int64_t top_k, int64_t experts, int64_t capacity, bool dropless,
                           uint64_t seed, int64_t d = 40) {
  ml::Rng rng(seed);
  const mltest::Dispatch p(rng, tokens, top_k, experts, dropless ? top_k * tokens : capacity);
  const int64_t segment = 64, A = p.assignments();
  std::vector<int64_t> offsets(experts);
  if (dropless) ml::cpu::segment_offsets(p.counts.data(), experts, segment, offsets.data());
  const int64_t slots = dropless ? A + experts * (segment - 1) : experts * p.capacity;
  std::vector<int32_t> slot(A), source(slots);
  ml::cpu::place(p.expert.data(), p.kept.data(), p.rank.data(), dropless ? offsets.data() : nullptr, p.capacity, A,
                 slots, slot.data(), source.data());
  const auto x = rounded<T>(uniform(rng, tokens * d)), gates = rounded<T>(uniform(rng, A));
  const auto out = rounded<T>(uniform(rng, slots * d)), dy = rounded<T>(uniform(rng, tokens * d));
  std::vector<double> gathered(slots * d), scaled(slots * d), combined(tokens * d), dgates(A);
  ml::cpu::gather<double>(x.data(), nullptr, source.data(), slots, tokens, d, gathered.data());
  ml::cpu::gather<double>(dy.data(), gates.data(), source.data(), slots, tokens, d, scaled.data());
  ml::cpu::combine<double>(out.data(), gates.data(), slot.data(), tokens, top_k, d, combined.data());
  ml::cpu::gate_grad<double>(dy.data(), out.data(), slot.data(), tokens, A, d, dgates.data());

  Dev<int32_t> gexpert(widen(p.expert)), grank(widen(p.rank)), gslot(A), gsource(slots);
  Dev<uint8_t> gkept(widen(p.kept));
  Dev<int64_t> gcounts(widen(p.counts)), goffsets(experts);
  Dev<T> gx(x), ggates(gates), gout(out), gdy(dy), ggathered(slots * d), gscaled(slots * d), gcombined(tokens * d);
  Dev<T> gdgates(A);
  for (auto* g : {&ggathered, &gscaled, &gcombined, &gdgates}) g->poison();
  gslot.poison();
  gsource.poison();
  if (dropless) ml::cuda::segment_offsets(gcounts.get(), experts, segment, goffsets.get(), nullptr);
  ml::cuda::place(gexpert.get(), gkept.get(), grank.get(), dropless ? goffsets.get() : nullptr, p.capacity, A, slots,
                  gslot.get(), gsource.get(), nullptr);
  ml::cuda::gather<T>(gx.get(), nullptr, gsource.get(), slots, tokens, d, ggathered.get(), nullptr);
  ml::cuda::gather<T>(gdy.get(), ggates.get(), gsource.get(), slots, tokens, d, gscaled.get(), nullptr);
  ml::cuda::combine<T>(gout.get(), ggates.get(), gslot.get(), tokens, top_k, d, gcombined.get(), nullptr);
  ml::cuda::gate_grad<T>(gdy.get(), gout.get(), gslot.get(), tokens, A, d, gdgates.get(), nullptr);
  sync("moe_dispatch");

  if (dropless) EXPECT(download_raw(goffsets) == offsets, "segment offsets differ");
  EXPECT(download_raw(gslot) == slot, "slots differ");
  EXPECT(download_raw(gsource) == source, "sources differ");
  Errors errors(bound<T>());
  errors.add("gather", ggathered.download(), gathered);
  errors.add("gather scaled", gscaled.download(), scaled);
  errors.add("combine", gcombined.download(), combined);
  errors.add("gate_grad", gdgates.download(), dgates);
  return errors.report() + mltest::str(" (", A, " assignments, ", slots, " slots)");
}

}  // namespace

NATIVE_TEST(cuda_moe_dispatch_fp32_capacity_top1) { return check_dispatch<float>(3001, 1, 8, 300, false, 331); }
NATIVE_TEST(cuda_moe_dispatch_fp32_capacity_top2_drops) { return check_dispatch<float>(1777, 2, 5, 400, false, 332); }
NATIVE_TEST(cuda_moe_dispatch_fp32_dropless_top2) { return check_dispatch<float>(2049, 2, 33, 0, true, 333); }
NATIVE_TEST(cuda_moe_dispatch_fp32_one_token) { return check_dispatch<float>(1, 2, 4, 1, false, 334); }
NATIVE_TEST(cuda_moe_dispatch_bf16_capacity_top1) { return check_dispatch<bf16>(3001, 1, 8, 300, false, 335); }
NATIVE_TEST(cuda_moe_dispatch_bf16_dropless_top1) { return check_dispatch<bf16>(999, 1, 16, 0, true, 336); }
// Rows copied in runs of 8: a ragged last run (37), rows that break 16-byte alignment, wide rows.
NATIVE_TEST(cuda_moe_dispatch_ragged_and_wide_rows) {
  return check_dispatch<bf16>(301, 2, 8, 60, false, 337, 37) + "; " +
         check_dispatch<float>(257, 2, 4, 0, true, 338, 13) + "; " +
         check_dispatch<bf16>(129, 1, 4, 40, false, 339, 1032);
}
