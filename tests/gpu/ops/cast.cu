// cast on the device: fp32 → bf16 rounds to nearest even exactly as the host's
// __float2bfloat16_rn (the CPU build has no bf16 type), bf16 → fp32 and fp32 → fp32 are exact;
// the CPU reference's float ↔ double round trip gives back the same floats.
#include <cmath>
#include <limits>

#include "gpu/gpu_test.h"
#include "ops/cast/cast.h"

using namespace gputest;

NATIVE_TEST(cuda_cast_rounds_like_the_host) {
  ml::Rng rng(321);
  const int64_t n = 100003;
  std::vector<float> x(n);
  for (int64_t i = 0; i < n; ++i) x[i] = float(rng.uniform(-1, 1) * std::exp2(rng.uniform(-30, 30)));
  x[0] = 0.f, x[1] = -0.f, x[2] = std::numeric_limits<float>::infinity(), x[3] = 1.00390625f;  // a tie: 1 + 2⁻⁸
  x[4] = std::numeric_limits<float>::max(), x[5] = std::numeric_limits<float>::denorm_min();

  float *gx, *gback, *gcopy;
  bf16* gb;
  check(cudaMalloc(&gx, n * sizeof(float)), "malloc");
  check(cudaMalloc(&gback, n * sizeof(float)), "malloc");
  check(cudaMalloc(&gcopy, n * sizeof(float)), "malloc");
  check(cudaMalloc(&gb, n * sizeof(bf16)), "malloc");
  check(cudaMemcpy(gx, x.data(), n * sizeof(float), cudaMemcpyHostToDevice), "upload");
  ml::cuda::cast<float, bf16>(gx, gb, n, nullptr);
  ml::cuda::cast<bf16, float>(gb, gback, n, nullptr);
  ml::cuda::cast<float, float>(gx, gcopy, n, nullptr);
  sync("cast");
  std::vector<bf16> b(n);
  std::vector<float> back(n), copy(n);
  check(cudaMemcpy(b.data(), gb, n * sizeof(bf16), cudaMemcpyDeviceToHost), "download");
  check(cudaMemcpy(back.data(), gback, n * sizeof(float), cudaMemcpyDeviceToHost), "download");
  check(cudaMemcpy(copy.data(), gcopy, n * sizeof(float), cudaMemcpyDeviceToHost), "download");
  for (auto* p : {gx, gback, gcopy}) cudaFree(p);
  cudaFree(gb);

  std::vector<double> wide(n);
  std::vector<float> narrow(n);
  ml::cpu::cast<float, double>(x.data(), wide.data(), n);
  ml::cpu::cast<double, float>(wide.data(), narrow.data(), n);
  for (int64_t i = 0; i < n; ++i) {
    const float want = __bfloat162float(__float2bfloat16_rn(x[i]));
    EXPECT(std::memcmp(&back[i], &want, sizeof(float)) == 0, "element ", i, ": ", x[i], " → ", back[i], " vs ", want);
    EXPECT(std::memcmp(&copy[i], &x[i], sizeof(float)) == 0, "fp32 copy of element ", i);
    EXPECT(std::memcmp(&narrow[i], &x[i], sizeof(float)) == 0, "CPU float → double → float of element ", i);
  }
  EXPECT(back[3] == 1.0f, "the tie 1 + 2⁻⁸ rounds to even (1), got ", back[3]);
  return mltest::str(n, " values: bf16 rounding, round trips and copies exact");
}
