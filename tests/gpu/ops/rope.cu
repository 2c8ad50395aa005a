#include "gpu/gpu_test.h"
#include "ops/rope/rope.h"

using namespace gputest;

namespace {

// Rotary embeddings forward and back on the device against the fp64 CPU, positions into the
// thousands (where a float angle would drift), in place as the attention layer runs them.
template <typename T>
std::string check_rope(ml::cpu::RopeDims d, double base, uint64_t seed) {
  ml::Rng rng(seed);
  const int64_t n = d.batch * d.len * d.heads * d.dim;
  const auto x = rounded<T>(uniform(rng, n)), dy = rounded<T>(uniform(rng, n));
  std::vector<double> y(n), dx(n);
  ml::cpu::rope_forward<double>(d, base, x.data(), y.data());
  ml::cpu::rope_backward<double>(d, base, dy.data(), dx.data());
  Dev<T> gx(x), gdy(dy);
  ml::cuda::rope_forward<T>(d, base, gx.get(), gx.get(), nullptr);
  ml::cuda::rope_backward<T>(d, base, gdy.get(), gdy.get(), nullptr);
  sync("rope");
  Errors errors(bound<T>());
  errors.add("y", gx.download(), y);
  errors.add("dx", gdy.download(), dx);
  return errors.report();
}

}  // namespace

NATIVE_TEST(cuda_rope_fp32_matches_cpu) { return check_rope<float>({2, 4100, 4, 64}, 10000, 1011); }
NATIVE_TEST(cuda_rope_bf16_matches_cpu) { return check_rope<bf16>({3, 37, 2, 16}, 500, 1012); }

// Generation's rotation: each one-token sequence at its own position (offsets on the device).
template <typename T>
std::string check_rope_offsets(uint64_t seed) {
  ml::Rng rng(seed);
  const std::vector<double> offsets{0, 17, 4095};
  const int64_t batch = 3, heads = 4, dim = 32, n = batch * heads * dim;
  const auto x = rounded<T>(uniform(rng, n));
  std::vector<int32_t> host_offsets(offsets.begin(), offsets.end());
  std::vector<double> y(n);
  ml::cpu::rope_forward<double>({batch, 1, heads, dim, host_offsets.data()}, 10000, x.data(), y.data());
  Dev<T> gx(x);
  Dev<int32_t> goffsets(offsets);
  ml::cuda::rope_forward<T>({batch, 1, heads, dim, goffsets.get()}, 10000, gx.get(), gx.get(), nullptr);
  sync("rope offsets");
  Errors errors(bound<T>());
  errors.add("y", gx.download(), y);
  return errors.report();
}

NATIVE_TEST(cuda_rope_offsets_fp32_matches_cpu) { return check_rope_offsets<float>(1013); }
NATIVE_TEST(cuda_rope_offsets_bf16_matches_cpu) { return check_rope_offsets<bf16>(1014); }
