// The GPU dense MLP against the fp64 CPU one on the same weights: GELU and SwiGLU, fp32 and
// bf16, odd and single-row batches; two runs bit-identical.
#include "gpu/nn/layer_check.h"
#include "nn/mlp.h"

using namespace gputest;

namespace {

constexpr int64_t kDModel = 32;
const std::string kPrefix = "backbone.layers.2.mlp.";

template <typename T>
struct Setup {
  Setup(ml::FfnKind kind, int64_t batch, int64_t len, uint64_t seed)
      : pair(
            [&](auto& params) {
              using B = typename std::remove_reference_t<decltype(params)>::Backend;
              return std::make_unique<ml::MlpLayer<B>>(kDModel, ml::FfnConfig{kind, 72}, params, kPrefix, 4);
            },
            seed) {
    ml::Rng rng(seed);
    x = rounded<T>(uniform(rng, batch * len * kDModel));
    dy = rounded<T>(uniform(rng, batch * len * kDModel));
  }

  LayerPair<T> pair;
  std::vector<double> x, dy;
};

template <typename T>
std::string check_mlp(ml::FfnKind kind, int64_t batch, int64_t len, uint64_t seed) {
  Setup<T> s(kind, batch, len, seed);
  const GpuRun got = run_gpu<T>(s.pair, s.x, s.dy, batch, len);
  return compare<T>(s.pair, got, s.x, s.dy, batch, len);
}

}  // namespace

NATIVE_TEST(cuda_mlp_fp32_gelu) { return check_mlp<float>(ml::FfnKind::Gelu, 3, 41, 501); }
NATIVE_TEST(cuda_mlp_fp32_swiglu) { return check_mlp<float>(ml::FfnKind::SwiGLU, 2, 33, 502); }
NATIVE_TEST(cuda_mlp_fp32_one_row) { return check_mlp<float>(ml::FfnKind::SwiGLU, 1, 1, 503); }
NATIVE_TEST(cuda_mlp_bf16_gelu) { return check_mlp<bf16>(ml::FfnKind::Gelu, 3, 41, 504); }
NATIVE_TEST(cuda_mlp_bf16_swiglu) { return check_mlp<bf16>(ml::FfnKind::SwiGLU, 2, 33, 505); }
NATIVE_TEST(cuda_mlp_fp32_deterministic) {
  Setup<float> s(ml::FfnKind::SwiGLU, 4, 29, 506);
  const GpuRun first = run_gpu<float>(s.pair, s.x, s.dy, 4, 29);
  const GpuRun second = run_gpu<float>(s.pair, s.x, s.dy, 4, 29);
  EXPECT(first.bytes == second.bytes, "two runs differ");
  return mltest::str(first.bytes.size(), " bytes of y, dx and gradients identical");
}
