// The GPU Mamba mixer against the fp64 CPU one on the same weights: fp32 and bf16, the
// paper's d_state 16 and the smaller states the kernel supports, lengths that are not a
// multiple of the scan's chunk, a single token; two runs bit-identical.
#include "gpu/nn/layer_check.h"
#include "nn/mamba.h"

using namespace gputest;

namespace {

template <typename T>
LayerCase<T> mixer(int64_t d_model, int64_t d_state, int64_t rows, uint64_t seed) {
  return LayerCase<T>(
      [&](auto& params) {
        using B = typename std::remove_reference_t<decltype(params)>::Backend;
        ml::MambaConfig c;
        c.d_model = d_model, c.d_state = d_state;
        return std::make_unique<ml::MambaMixer<B>>(c, params, "backbone.layers.0.mixer.", 4);
      },
      rows, d_model, seed);
}

template <typename T>
std::string check_mixer(int64_t d_model, int64_t d_state, int64_t batch, int64_t len, uint64_t seed) {
  auto c = mixer<T>(d_model, d_state, batch * len, seed);
  return check(c, batch, len);
}

}  // namespace

NATIVE_TEST(cuda_mamba_fp32_d_state_16) { return check_mixer<float>(32, 16, 2, 37, 701); }
NATIVE_TEST(cuda_mamba_fp32_d_state_4_long) { return check_mixer<float>(24, 4, 1, 300, 702); }
NATIVE_TEST(cuda_mamba_fp32_one_token) { return check_mixer<float>(16, 8, 1, 1, 703); }
NATIVE_TEST(cuda_mamba_bf16_d_state_16) { return check_mixer<bf16>(32, 16, 2, 37, 704); }
NATIVE_TEST(cuda_mamba_bf16_d_state_2) { return check_mixer<bf16>(16, 2, 3, 65, 705); }
NATIVE_TEST(cuda_mamba_fp32_deterministic) {
  auto c = mixer<float>(32, 16, 2 * 129, 706);
  return check_deterministic(c, 2, 129);
}
