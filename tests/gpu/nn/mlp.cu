// The GPU dense MLP against the fp64 CPU one on the same weights: GELU and SwiGLU, fp32 and
// bf16, odd and single-row batches; two runs bit-identical.
#include "gpu/nn/layer_check.h"
#include "nn/mlp.h"

using namespace gputest;

namespace {

constexpr int64_t kDModel = 32;

template <typename T>
LayerCase<T> mlp(ml::FfnKind kind, int64_t rows, uint64_t seed) {
  return LayerCase<T>(
      [&](auto& params) {
        using B = typename std::remove_reference_t<decltype(params)>::Backend;
        return std::make_unique<ml::MlpLayer<B>>(kDModel, ml::FfnConfig{kind, 72}, params, "backbone.layers.2.mlp.", 4);
      },
      rows, kDModel, seed);
}

template <typename T>
std::string check_mlp(ml::FfnKind kind, int64_t batch, int64_t len, uint64_t seed) {
  auto c = mlp<T>(kind, batch * len, seed);
  return check(c, batch, len);
}

}  // namespace

NATIVE_TEST(cuda_mlp_fp32_gelu) { return check_mlp<float>(ml::FfnKind::Gelu, 3, 41, 501); }
NATIVE_TEST(cuda_mlp_fp32_swiglu) { return check_mlp<float>(ml::FfnKind::SwiGLU, 2, 33, 502); }
NATIVE_TEST(cuda_mlp_fp32_one_row) { return check_mlp<float>(ml::FfnKind::SwiGLU, 1, 1, 503); }
NATIVE_TEST(cuda_mlp_bf16_gelu) { return check_mlp<bf16>(ml::FfnKind::Gelu, 3, 41, 504); }
NATIVE_TEST(cuda_mlp_bf16_swiglu) { return check_mlp<bf16>(ml::FfnKind::SwiGLU, 2, 33, 505); }
NATIVE_TEST(cuda_mlp_fp32_deterministic) {
  auto c = mlp<float>(ml::FfnKind::SwiGLU, 4 * 29, 506);
  return check_deterministic(c, 4, 29);
}
